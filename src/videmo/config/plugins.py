"""Options a plug-in declares: config sections that are not fields of the config's dataclasses.

A registered part (a detector's or frame model's spec, a feature extractor's class) may carry
``section`` (a dotted path: ``faces.bright``, ``emotions.bright`` or a top-level ``brightness``)
and ``options`` (a frozen dataclass of :func:`videmo.config.opt` fields). The config finds them
through the registries its options name as ``choices`` (read by name, so the config imports
no stage): such a section is read from YAML and ``--set``, validated, written back by
``to_dict``, listed by the template and docs/config.md, and read with ``cfg.options(path)``,
exactly as a section of the config's own. Entries registered by reference (``"module:attr"``,
the shipped parts) are not imported for this: their sections are the config's own fields.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from videmo.registry import resolve


def _registry_refs(cls: type, out: list[str]) -> list[str]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        ref = f.metadata.get("choices")
        if ref and ref not in out:
            out.append(ref)
        tp = hints.get(f.name)
        if dataclasses.is_dataclass(tp):
            _registry_refs(typing.cast(type, tp), out)
    return out


def registry_of(cls: type, name: str) -> Any:
    """The registry option ``name`` of section ``cls`` takes its choices from."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return resolve(field.metadata["choices"])


def _is_field(path: str) -> bool:
    from videmo.config.options import Config

    tp: Any = Config
    for part in path.split("."):
        if not dataclasses.is_dataclass(tp):
            return False
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if part not in fields:
            return False
        tp = typing.get_type_hints(tp)[part]
    return True


def plugin_sections() -> dict[str, tuple[type, str]]:
    """Dotted section -> (its options dataclass, its one-line doc), for every registered part
    whose options are not a section of the config's own; registry order."""
    from videmo.config.options import Config

    out: dict[str, tuple[type, str]] = {}
    for ref in _registry_refs(Config, []):
        registry = resolve(ref)
        for name, entry in registry.entries():
            section, options = (getattr(entry, "section", None), getattr(entry, "options", None))
            if isinstance(entry, str) or not section or options is None or _is_field(section):
                continue
            if isinstance(options, str):
                options = resolve(options)
            if not dataclasses.is_dataclass(options):
                raise TypeError(f"{registry.what} {name!r}: its options must be a dataclass")
            doc = getattr(entry, "doc", "") or f"Options of the {registry.what} {name!r}."
            out.setdefault(section, (options, doc.splitlines()[0]))
    return out


def take_sections(data: dict[str, Any], sections: dict[str, tuple[type, str]]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` without the plug-in sections (copied where touched) and those sections' raw
    values, by dotted path."""
    found: dict[str, Any] = {}
    data = dict(data)
    for path in sections:
        *parents, leaf = path.split(".")
        node = data
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                break
            node[p] = child = dict(child)
            node = child
        else:
            if leaf in node:
                found[path] = node.pop(leaf)
    return data, found


def put(d: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted ``path`` of nested dicts (the plain form of a config)."""
    *parents, leaf = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


def section_options(cfg: Any, section: str) -> Any:
    """``cfg.options(section)``: walk the config's own sections, else the plug-ins' (given in
    the file, or their defaults)."""
    from videmo.config.options import ConfigError

    node: Any = cfg
    for part in section.split("."):
        names = {f.name for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) \
            else set()
        if part not in names:
            break
        node = getattr(node, part)
    else:
        return node
    if section in cfg.plugins:
        return cfg.plugins[section]
    known = plugin_sections()
    if section not in known:
        raise ConfigError(f"no config section {section!r}")
    return known[section][0]()
