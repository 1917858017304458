"""The typed-field machinery every config section is written with: :func:`opt` (a field with a
type, a default and a one-line ``doc``), :class:`ConfigError`, and :func:`option_types` (an
option's declared type, a registry's names as a ``Literal``).

The sections themselves are declared in :mod:`videmo.config.options` (those the cache key
reads, and :class:`~videmo.config.options.Config`) and :mod:`videmo.config.sections` (run,
report, slurm, annotate, learn, train).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import field
from typing import Any, Literal

from videmo.registry import resolve


class ConfigError(ValueError):
    """A config file, key or value is wrong; the message names it and says what is allowed."""


def opt(default: Any, doc: str, *, minimum: float | None = None, exclusive: bool = False,
        choices: str | None = None, **kw):
    """A config option: its default, its one-line doc, an optional lower bound and, for a
    name (or a list of names), ``choices``: the :class:`videmo.registry.Registry` that holds
    the allowed names, as ``"module:attr"`` (read when a config is checked, so importing the
    config imports no stage; see :func:`option_types`)."""
    meta = {"doc": doc, "minimum": minimum, "exclusive": exclusive, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: typing.cast(Any, default).copy(), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def registry_names(ref: str) -> tuple[str, ...]:
    """The names a registry (``"module:attr"``) holds now."""
    return tuple(resolve(ref))


def option_types(cls: type) -> dict[str, Any]:
    """The declared type of each option of section ``cls``, with a registry's names as a
    ``Literal`` where the option has ``choices`` (a list option: a list of them), so the
    loader, ``--set``, the template and the reference see one kind of choice."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        ref = f.metadata.get("choices")
        if ref:
            names = typing.cast(Any, Literal).__getitem__(registry_names(ref))
            hints[f.name] = list[names] if typing.get_origin(hints[f.name]) is list else names
    return hints
