"""Names of pluggable parts, each pointing at the code that makes it, imported on first use.

One :class:`Registry` per kind of part (face detectors, frame models, clip aggregates, learners,
feature extractors), declared beside the parts it names. The config reads its choices from
them (:func:`videmo.config.options.opt`'s ``choices``), so a name is spelled once: the entry.
An entry is ``"module:attr"`` (imported when the part is first made, so listing the names
imports no model library) or the object itself (a part registered at run time, e.g. by a test).
"""

from __future__ import annotations

import difflib
import importlib
import typing
from collections.abc import Iterator
from typing import Any


def resolve(ref: str) -> Any:
    """The object a ``"module:attr"`` reference names (the module imported now); the one
    parser of such references."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{ref!r} is not a 'module:attr' reference")
    return getattr(importlib.import_module(module), attr)


def did_you_mean(name: object, names: Iterator[str] | tuple[str, ...] | list[str],
                 template: str = " (did you mean {!r}?)") -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names`` to ``name``, else ``""``."""
    hint = difflib.get_close_matches(str(name), list(names), n=1)
    return template.format(hint[0]) if hint else ""


class Registry:
    """An ordered mapping name -> part, resolved lazily; ``what`` names the kind in errors
    (e.g. "face detector")."""

    def __init__(self, what: str, entries: dict[str, Any] | None = None) -> None:
        self.what = what
        self._entries: dict[str, Any] = dict(entries or {})

    def register(self, name: str, entry: Any, *, after: str | None = None,
                 before: str | None = None) -> Any:
        """Add (or replace) ``name``; ``entry`` is ``"module:attr"`` or the part itself. The
        order is the registration order, or right ``after`` / ``before`` another name (the
        report's sections are a page in registry order)."""
        if not name:
            raise ValueError(f"a {self.what} needs a name")
        if after is None and before is None:
            self._entries[name] = entry
            return entry
        if after is not None and before is not None:
            raise ValueError(f"{self.what} {name!r}: give after or before, not both")
        anchor = after if after is not None else before
        if anchor not in self._entries:
            self.get(typing.cast(str, anchor))  # the "unknown ... did you mean" error
        items = [(k, v) for k, v in self._entries.items() if k != name]
        at = [k for k, _ in items].index(anchor) + (after is not None)
        items.insert(at, (name, entry))
        self._entries = dict(items)
        return entry

    def pop(self, name: str) -> Any:
        return self._entries.pop(name)

    def entries(self) -> list[tuple[str, Any]]:
        """(name, entry) pairs as registered: a reference not imported yet stays a string."""
        return list(self._entries.items())

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def items(self) -> list[tuple[str, Any]]:
        """(name, part) pairs, every reference imported."""
        return [(n, self.get(n)) for n in self.names()]

    def values(self) -> list[Any]:
        return [self.get(n) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> Any:
        """The part ``name`` names, importing its module the first time."""
        try:
            entry = self._entries[name]
        except KeyError:
            hint = did_you_mean(name, self.names())
            raise KeyError(f"unknown {self.what} {name!r}{hint}; known: "
                           f"{', '.join(self.names())}") from None
        if isinstance(entry, str) and ":" in entry:
            entry = resolve(entry)
            self._entries[name] = entry
        return entry

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)})"
