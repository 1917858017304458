"""Generated `--set KEY=VALUE` overrides and config YAML (Hypothesis): each ends in a Config
holding exactly the value meant, or in one ConfigError line naming the key (or the file);
never a traceback, never a silently wrong value (a NaN, a list made of a typo)."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from videmo import config as config_mod
from videmo.config import ConfigError
from videmo.config.plugins import plugin_sections

OPTIONS = [(k, tp) for k, tp, _, _ in config_mod.iter_options()
           if not dataclasses.is_dataclass(tp)]
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=20)
NULLS = ("", "null", "Null", "NULL", "~")


def _args(tp: Any) -> tuple:
    return typing.get_args(tp)


def _nullable(tp: Any) -> bool:
    return typing.get_origin(tp) in (types.UnionType, typing.Union) and type(None) in _args(tp)


def _base(tp: Any) -> Any:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        rest = [a for a in _args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _plain_text(s: str) -> bool:
    """A string an override takes as it is (not a null, not one quoted YAML scalar)."""
    t = s.strip()
    return s not in NULLS and t not in NULLS and not (
        len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"")


def values(tp: Any) -> st.SearchStrategy:
    """Values of the declared type ``tp`` (finite numbers, any text)."""
    tp = _base(tp)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return st.sampled_from(_args(tp))
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-10**9, 10**9)
    if tp is float:
        return st.floats(-1e9, 1e9, allow_nan=False)
    if tp is str:
        return TEXT.filter(_plain_text)
    if origin is list:
        return st.lists(values(_args(tp)[0]), max_size=4)
    if origin is dict:
        k, v = _args(tp)
        return st.dictionaries(values(k), values(v), max_size=3)
    if origin in (types.UnionType, typing.Union):  # e.g. str | list[str]
        return st.one_of([values(a) for a in _args(tp) if a is not type(None)])
    raise AssertionError(f"no strategy for {tp!r}")


def render(value: Any) -> str:
    """A value as a user types it after KEY=: text as it is, the rest as YAML."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _get(cfg: config_mod.Config, key: str) -> Any:
    """The value at ``key``: in the config's own sections, or in a plug-in's options section
    (``faces.blazeface_full``: read through ``cfg.options``)."""
    section, _, leaf = key.rpartition(".")
    if section and section in plugin_sections():
        return getattr(cfg.options(section), leaf)
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _one_line_naming(e: ConfigError, *names: str) -> str:
    msg = str(e)
    assert "\n" not in msg, msg
    assert any(n in msg for n in names), f"{msg!r} names none of {names}"
    return msg


@given(data=st.data(), option=st.sampled_from(OPTIONS))
def test_an_override_of_each_option_gives_that_value_or_names_the_key(data, option):
    key, tp = option
    value = data.draw(values(tp), label="value")
    raw = render(value)
    try:
        cfg = config_mod.from_dict(config_mod.apply_overrides({}, [f"{key}={raw}"]))
    except ConfigError as e:
        _one_line_naming(e, key)
        return
    got = _get(cfg, key)
    if key == "annotate.shortcuts":  # given shortcuts add to the built-in ones
        got = {b: k for b, k in got.items() if b in value}
    assert got == value, (key, raw, got)


@given(option=st.sampled_from(OPTIONS), raw=TEXT)
def test_any_text_for_any_key_gives_a_config_or_names_the_key(option, raw):
    key, tp = option
    try:
        cfg = config_mod.from_dict(config_mod.apply_overrides({}, [f"{key}={raw}"]))
    except ConfigError as e:
        _one_line_naming(e, key)
        return
    got = _get(cfg, key)
    for x in _leaves(got):
        assert not (isinstance(x, float) and math.isnan(x)), (key, raw, got)
    if _base(tp) is str and _plain_text(raw):
        assert got == raw  # a string key takes the text as it is
    if raw.strip() in NULLS and _nullable(tp):
        assert got is None


@pytest.mark.parametrize("item", ['corpus.paths=["\x7f"]', "corpus.exclude=[a, b",
                                  "report.mapping={happy: positive"])
def test_a_list_or_mapping_override_that_is_not_yaml_is_refused(item):
    """Found by the property above (corpus.paths=["\x7f"]: PyYAML refuses the character):
    a broken list became a one-item list of the text as typed, e.g. the pattern '[a, b'."""
    key = item.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^config key '{key}': the value of --set .* is not "
                                          r"valid YAML \(.*\)$") as e:
        config_mod.from_dict(config_mod.apply_overrides({}, [item]))
    assert "\n" not in str(e.value)


def _leaves(x: Any):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _leaves(v)
    elif dataclasses.is_dataclass(x):
        for f in dataclasses.fields(x):
            yield from _leaves(getattr(x, f.name))
    else:
        yield x


# ---------------------------------------------------------------- config YAML files
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
ANY = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
SECTIONS = sorted({k.split(".")[0] for k, _ in OPTIONS})


@st.composite
def config_data(draw) -> tuple[dict, list[tuple[str, Any]]]:
    """Plain config data: known keys with right, wrong or null values, and unknown keys.
    Returns the data and the (key, value) pairs given with exactly their declared type."""
    data: dict[str, Any] = {}
    exact = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["right", "right", "wrong", "null", "unknown", "section"]))
        key, tp = draw(st.sampled_from(OPTIONS))
        if kind == "unknown":
            key = key.rsplit(".", 1)[0] + "." + draw(TEXT) if "." in key else draw(TEXT)
        if kind == "section":
            data[draw(st.sampled_from(SECTIONS))] = draw(st.one_of(st.none(), ANY))
            continue
        value = (draw(values(tp)) if kind == "right" else None if kind == "null"
                 else draw(ANY))
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
        if kind == "right":
            exact.append((key, value))
    return data, exact


@given(generated=config_data())
def test_config_yaml_gives_the_values_written_or_names_the_key(tmp_path_factory, generated):
    data, exact = generated
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        cfg = config_mod.load(path)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        assert "config key " in msg or str(path) in msg, msg
        return
    for x in _leaves(cfg):
        assert not (isinstance(x, float) and math.isnan(x)), "a NaN was accepted"
    for key, value in exact:
        if _at(data, key) is not value:  # a later draw replaced it
            continue
        got = _get(cfg, key)
        if key == "annotate.shortcuts":
            got = {b: k for b, k in got.items() if b in value}
        assert got == value, (key, value, got)


def _at(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


@given(text=st.text(max_size=80))
def test_any_yaml_text_gives_a_config_or_one_line_naming_the_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config_mod.load(path)
    except ConfigError as e:
        _one_line_naming(e, str(path), "config key ")


def test_a_yaml_error_is_one_line(tmp_path):
    """Found by the property above: PyYAML's message spans lines ("\x1f" at the start)."""
    for text, where in [("\x1f", "unacceptable character #x001f"),
                        ("corpus: {paths: [a\n", "line 2, column 1")]:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as e:
            config_mod.load(path)
        assert "\n" not in str(e.value) and where in str(e.value), str(e.value)


def test_an_unknown_key_with_a_line_break_is_named_on_one_line():
    """Found by the YAML property above: {corpus: {"\n": null}} gave a two-line message."""
    with pytest.raises(ConfigError, match=r"^unknown config key 'corpus\.\\n'; allowed here: "
                                          r"paths, ") as e:
        config_mod.from_dict({"corpus": {"\n": None}})
    assert "\n" not in str(e.value)


def test_a_yaml_line_break_inside_a_list_override_is_refused(tmp_path):
    """Found by the long campaign: U+0085 inside [..] became a space, silently."""
    import pytest

    from videmo.config import ConfigError, apply_overrides

    with pytest.raises(ConfigError, match=r"corpus.paths.*U\+0085"):
        apply_overrides({}, ['corpus.paths=["0\x85"]'])
