"""The documented options as text: the YAML template (``videmo config --template``) and the
Markdown reference kept in docs/config.md (``videmo config reference``; a test checks it)."""

from __future__ import annotations

import dataclasses
import json

import yaml

from videmo.config.load import type_name
from videmo.config.options import Config, option_types
from videmo.config.plugins import plugin_sections
from videmo.registry import resolve


def iter_options(cls: type = Config, prefix: str = ""):
    """Yield (key, type, default, doc) for every option, depth first, in declaration order."""
    hints = option_types(cls)
    for f in dataclasses.fields(cls):
        doc = f.metadata.get("doc")
        if doc is None:
            continue
        tp = hints[f.name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        yield prefix + f.name, tp, default, doc
        if dataclasses.is_dataclass(tp):
            yield from iter_options(tp, prefix + f.name + ".")
    # registered plug-ins' own sections under this one (config/plugins.py)
    for path, (options, doc) in plugin_sections().items():
        if path.rpartition(".")[0] == prefix[:-1]:
            yield path, options, options(), doc
            yield from iter_options(options, path + ".")


def _loaded() -> dict[str, list[str]]:
    """Option key -> one comment line per registered part it chooses, naming the model files
    (at default options) and packages the part loads. Read from the specs by reference
    (``videmo.extract.keys:parts_loaded``, docs/config.md's table), as the config reads its
    choices, so the config imports no stage."""
    out: dict[str, list[str]] = {}
    for option, name, _doc, files, packages in resolve("videmo.extract.keys:parts_loaded")():
        shown = f"{', '.join(files) or 'no model file'}; {', '.join(packages) or 'OpenCV only'}"
        out.setdefault(option, []).append(f"{name}: {shown}")
    return out


def template() -> str:
    """A complete, commented YAML config with every option at its default; an option that
    chooses a detector or frame model lists what each choice loads."""
    lines = ["# videmo config: every option with its default. Delete what you do not change.",
             "# Docs: README.md (Configuration). Validate with: videmo config check FILE", ""]
    loaded = _loaded()
    for key, tp, default, doc in iter_options():
        depth = key.count(".")
        indent = "  " * depth
        name = key.rsplit(".", 1)[-1]
        if dataclasses.is_dataclass(tp):
            if depth == 0:
                lines.append("")
            lines.append(f"{indent}# {doc}")
            lines.append(f"{indent}{name}:")
            continue
        lines.append(f"{indent}# {doc} ({type_name(tp)})")
        if key in loaded:
            lines.append(f"{indent}# What each loads (model files at default options; packages):")
            lines.extend(f"{indent}#   {line}" for line in loaded[key])
        value = dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default
        rendered = yaml.safe_dump({name: value}, default_flow_style=True, sort_keys=False,
                                  width=1000).strip()
        lines.append(f"{indent}{rendered[1:-1]}" if rendered.startswith("{") else indent + rendered)
    return "\n".join(lines) + "\n"


def reference_markdown() -> str:
    """The config reference as a markdown table (kept in docs/config.md, checked by a test)."""
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for key, tp, default, doc in iter_options():
        if dataclasses.is_dataclass(tp):
            continue
        shown = json.dumps(default) if not isinstance(default, str) else default
        cells = [f"`{key}`", type_name(tp), f"`{shown}`", doc]
        # a bare | splits a Markdown table cell (choices are written 'a' | 'b')
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
