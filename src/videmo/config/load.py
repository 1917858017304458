"""Loading a config: YAML -> plain data -> ``--set`` overrides -> a checked :class:`Config`.

The checking is home-made and kept so on purpose. :func:`_coerce` is the one walker over the
option types (it reads a YAML file's values and ``--set`` text alike); it is about 100 lines and
gives the messages the house asks for: every error names the dotted key, an unknown key or value
gets a "did you mean", a relative path is resolved against the config file's folder. pydantic
(the obvious replacement) would add a dependency with a compiled core, write every message in
its own format ("Input should be ...", location tuples) and still need this module's override
reading (a string key keeps ``--set run.out=2019`` as text); dacite and cattrs give no "did you
mean" either.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from videmo import schema
from videmo.config.options import (
    Config,
    ConfigError,
    EmotionsConfig,
    ReportConfig,
    option_types,
)
from videmo.config.plugins import plugin_sections, registry_of, take_sections
from videmo.registry import did_you_mean


# ---------------------------------------------------------------- the type walker
def type_name(tp: Any) -> str:
    """A declared type in words, as errors, the template and the reference show it."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        item = type_name(typing.get_args(tp)[0])
        return f"list of {item.removeprefix('a ').removeprefix('an ')}"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping of {type_name(k)} to {type_name(v)}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _is_text(tp: Any) -> bool:
    """A string, or a choice among strings (faces.detector)."""
    if tp is str:
        return True
    return typing.get_origin(tp) is Literal and all(isinstance(a, str) for a in typing.get_args(tp))


_NULLS = ("", "null", "Null", "NULL", "~")


def _read_text(tp: Any, value: str) -> Any:
    """A string that came from ``--set`` (YAML's BaseLoader reads every scalar as a string),
    read as the scalar ``tp`` wants: a string key keeps the text, a number or a boolean is read
    as YAML, a null-able key takes null; a list keeps it for the list step (one item)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if type(None) in args and value in _NULLS:
            return None
        if any(_is_text(a) for a in args):
            return value
    if _is_text(tp) or origin is list:
        return value
    return _yaml(value)


def _coerce(tp: Any, value: Any, key: str, *, text: bool = False) -> Any:
    """``value`` checked and converted to the declared type ``tp``; errors name ``key``.

    The one walker over option types. From a YAML file (``text`` false) values already have
    YAML's types; from ``--set`` (``text`` true) every scalar is a string read by its type first
    (:func:`_read_text`), and a section comes back as plain data (a dict), not a dataclass, so
    the override can be merged into the file's data before the whole config is built."""
    if text and isinstance(value, str):
        value = _read_text(tp, value)
    origin = typing.get_origin(tp)
    bad = ConfigError(f"config key '{key}': expected {type_name(tp)}, got {value!r}")
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key, text=text)
            except ConfigError:
                continue
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        extra = did_you_mean(value, [str(a) for a in typing.get_args(tp)])
        raise ConfigError(f"config key '{key}': {value!r} is not one of "
                          f"{type_name(tp)}{extra}")
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{key}[{i}]", text=text) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        kt, vt = typing.get_args(tp)
        # a YAML number as a key (label_aliases: {1: positive}) is its text, as in run.json
        value = {str(k) if kt is str and type(k) is int else k: v for k, v in value.items()}
        return {_coerce(kt, k, key): _coerce(vt, v, f"{key}.{k}", text=text)
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise bad
        kwargs = _section(typing.cast(type, tp), value, key + ".", text=text)
        return kwargs if text else typing.cast(Any, tp)(**kwargs)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a bug in this package


def _check_bounds(f: dataclasses.Field, value: Any, key: str) -> None:
    minimum = f.metadata.get("minimum")
    if minimum is None or value is None or not isinstance(value, (int, float)):
        return
    if f.metadata.get("exclusive") and value <= minimum:
        raise ConfigError(f"config key '{key}': must be greater than {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"config key '{key}': must be at least {minimum}, got {value!r}")


def _section(cls: type, data: dict[str, Any], prefix: str = "", *,
             text: bool = False) -> dict[str, Any]:
    """The given keys of one section, each checked by its type and bounds; an unknown key fails
    with a "did you mean"."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("doc") is not None}
    for key in data:
        if key not in fields:
            extra = did_you_mean(key, list(fields), f" (did you mean '{prefix}{{}}'?)")
            name = f"{prefix}{key}"
            shown = f"'{name}'" if name.isprintable() else repr(name)  # one line: '\n' as \n
            raise ConfigError(f"unknown config key {shown}{extra}; allowed here: "
                              f"{', '.join(fields)}")
    hints = option_types(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            value = _coerce(hints[name], data[name], prefix + name, text=text)
            _check_bounds(f, value, prefix + name)
            kwargs[name] = value
    return kwargs


def _validate(cfg: Config) -> None:
    """Checks across keys, after types and bounds."""
    if "emotions" not in cfg.features:
        raise ConfigError(f"config key 'features': {cfg.features} must include emotions (the "
                          f"per-frame table every other feature joins), e.g. [emotions, mesh]")
    if len(set(cfg.features)) != len(cfg.features):
        raise ConfigError(f"config key 'features': {cfg.features} names an extractor twice")
    mapping = cfg.report.mapping
    for emotion, cls in mapping.items():
        if emotion not in schema.EMOTIONS:
            extra = did_you_mean(emotion, schema.EMOTIONS, " (did you mean '{}'?)")
            raise ConfigError(f"config key 'report.mapping.{emotion}': not one of the seven "
                              f"emotions {', '.join(schema.EMOTIONS)}{extra}")
        if cls not in schema.CLASSES:
            raise ConfigError(f"config key 'report.mapping.{emotion}': {cls!r} is not one of "
                              f"{', '.join(schema.CLASSES)}")
    missing = [e for e in schema.EMOTIONS if e not in mapping]
    if missing:
        raise ConfigError(f"config key 'report.mapping': no class for {', '.join(missing)}")
    r = cfg.report
    _validate_labels_options(r)
    if r.balance == "golden" and r.labels is None:
        raise ConfigError("config key 'report.balance': golden takes the predicted class shares "
                          "from the golden labels (an oracle), but report.labels is not set; set "
                          "report.labels (or pass --labels), or choose none, uniform or shares")
    if r.classifier is not None and r.balance != "none":
        raise ConfigError("config key 'report.classifier': a classifier labels the clips "
                          f"itself; report.balance: {r.balance} would relabel them by vote "
                          "shares; set report.balance: none")
    if r.balance == "shares":
        bad = set(r.balance_shares) - set(schema.CLASSES)
        if bad or not r.balance_shares or any(v < 0 for v in r.balance_shares.values()) \
                or sum(r.balance_shares.values()) <= 0:
            raise ConfigError("config key 'report.balance_shares': give non-negative shares for "
                              f"{', '.join(schema.CLASSES)} (got {r.balance_shares})")
    try:
        re.compile(r.group_pattern)
    except re.error as e:
        raise ConfigError(f"config key 'report.group_pattern': not a regular expression: "
                          f"{e}") from None
    c = cfg.corpus
    if c.window_step_s is not None and c.window_s is None:
        raise ConfigError("config key 'corpus.window_step_s' is set but corpus.window_s is not: "
                          "set the window's length too")
    if c.segments is not None and c.window_s is not None:
        raise ConfigError("config keys 'corpus.segments' and 'corpus.window_s' are both set: a "
                          "report's clips are either the segments or the windows; unset one")
    s = cfg.sampling
    if s.end_s is not None and s.end_s <= s.start_s:
        raise ConfigError(f"config key 'sampling.end_s': {s.end_s} must be after "
                          f"sampling.start_s ({s.start_s})")


def _validate_labels_options(r: ReportConfig) -> None:
    known = schema.accepted_values(r.mapping)
    folded = [a.strip().casefold() for a in r.label_aliases]
    twice = sorted({a for a in r.label_aliases if folded.count(a.strip().casefold()) > 1})
    if twice:
        raise ConfigError(f"config key 'report.label_aliases': {', '.join(map(repr, twice))} are "
                          f"the same value (labels are compared in any case); keep one")
    targets = ", ".join([*schema.CLASSES, *schema.CLASS_SHORT.values(), *schema.EMOTIONS])
    for alias, target in r.label_aliases.items():
        key = f"report.label_aliases.{alias}"
        if not alias.strip():
            raise ConfigError(f"config key 'report.label_aliases': an empty value cannot be an "
                              f"alias (maps to {target!r})")
        if alias.strip().casefold() in known:
            raise ConfigError(f"config key '{key}': {alias!r} is already a label value (it means "
                              f"{known[alias.strip().casefold()]}); label_aliases adds other "
                              f"values: remove it")
        if target.strip().casefold() not in known:
            extra = did_you_mean(target.strip().casefold(), list(known),
                                 " (did you mean '{}'?)")
            raise ConfigError(f"config key '{key}': {target!r} is not a class or emotion; use "
                              f"one of {targets}{extra}")
    for key in ("labels_clip_column", "labels_label_column"):
        value = getattr(r, key)
        if value is not None and not value.strip():
            raise ConfigError(f"config key 'report.{key}': empty; give the column's header name "
                              f"or null to auto-detect")


def from_dict(data: dict[str, Any] | None, base_dir: str | Path = ".") -> Config:
    """Build and validate a Config from plain data (as loaded from YAML)."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    sections = plugin_sections()
    data, given = take_sections(data, sections)
    plugins = {path: _coerce(sections[path][0], value, path) for path, value in given.items()}
    # a section that only repeats its defaults (as the template and to_dict write them) is the
    # same config as one without it
    plugins = {path: v for path, v in plugins.items() if v != sections[path][0]()}
    cfg = Config(**_section(Config, data), plugins=plugins)
    cfg = dataclasses.replace(cfg, base_dir=str(base_dir))
    _validate(cfg)
    # a frame model that reads another extractor's outputs (the mesh frame models: the mesh)
    # turns it on: it is computed anyway, so it is also kept (and the recorded config says so)
    model = registry_of(EmotionsConfig, "model").get(cfg.emotions.model)
    reads = [n for n in getattr(model, "reads", ()) if n not in cfg.features]
    if reads:
        cfg = dataclasses.replace(cfg, features=[*cfg.features, *reads])
    return cfg


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (safe loader), apply ``key=value`` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {yaml_problem(e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections at top level")
    data = apply_overrides(data, overrides or [])
    return from_dict(data, base_dir=path.resolve().parent)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to plain config data, reading each value by its type.

    A string key takes the value as it is (``run.out=2019`` is the folder "2019", ``run.out=a#1``
    keeps its "#"); one quoted YAML scalar is unquoted (``run.out="'a b'"``). ``null``, ``~`` or
    nothing unsets a key that may be null. Lists and mappings are YAML whose strings stay strings
    (``corpus.paths=[2019, 2020]``); numbers and booleans are YAML. The type comes from the Config
    dataclasses, so a new option needs no special case here.
    """
    data = json.loads(json.dumps(data, default=str))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. faces.detector=mtcnn")
        parts = key.strip().split(".")
        value = _override_value(option_type(parts), raw, item)
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return data


def option_type(parts: list[str]) -> Any:
    """The declared type at a dotted key (a field, or a value of a mapping option); None if the
    key is unknown (the loader then names it with a "did you mean")."""
    tp: Any = Config
    sections = plugin_sections()
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        if here in sections:
            tp = sections[here][0]
        elif dataclasses.is_dataclass(tp):
            fields = {f.name for f in dataclasses.fields(tp) if f.metadata.get("doc") is not None}
            if part not in fields:
                return None
            tp = option_types(tp)[part]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    return tp


_YAML_BREAKS = "\n\r\x85\u2028\u2029"  # what YAML reads as a line break


def _override_value(tp: Any, raw: str, item: str) -> Any:
    if tp is None:  # unknown key: plain YAML, so the loader can name it
        return _yaml(raw)
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)) and raw.strip() in _NULLS:
            return None
        if len(args) == 1:
            return _override_value(args[0], raw, item)
    if _is_text(tp):
        return _unquote(raw, item)
    if origin is list and not raw.lstrip().startswith("["):  # one item, read by its own type
        return [_override_value(typing.get_args(tp)[0], raw, item)]
    breaks = sorted({c for c in raw if c in _YAML_BREAKS})
    if breaks:  # YAML folds these inside a list or mapping: the value would silently change
        key = item.partition("=")[0].strip()
        raise ConfigError(f"config key '{key}': the value of --set {item!r} contains a line "
                          f"break YAML would fold ({', '.join(f'U+{ord(c):04X}' for c in breaks)}"
                          f"); write it in the config file instead")
    try:
        node = yaml.load(raw, Loader=yaml.BaseLoader)  # every scalar a string: no objects
    except yaml.YAMLError as e:
        if raw.lstrip().startswith(("[", "{")):  # a list or mapping meant, and broken
            key = item.partition("=")[0].strip()
            raise ConfigError(f"config key '{key}': the value of --set {item!r} is not valid "
                              f"YAML ({yaml_problem(e)})") from None
        node = raw
    return _coerce(tp, node, item.partition("=")[0].strip(), text=True)


def _unquote(raw: str, item: str) -> str:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        value = _yaml(text)
        if isinstance(value, str):
            return value
    return raw


def yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error on one line: where, then what (PyYAML's own text spans several lines)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or not problem:
        return " ".join(str(e).split())
    return " ".join(f"line {mark.line + 1}, column {mark.column + 1}: {problem}".split())


def _yaml(raw: str) -> Any:
    """One YAML scalar by the safe loader (no objects); text that is no YAML stays text."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def dump(cfg: Config) -> str:
    """The resolved config as YAML."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
