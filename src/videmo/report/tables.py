"""What the report's HTML templates are given: values as text, tables of text cells, figures as
data URIs. Python only turns pandas tables and metrics into :class:`Table` values (cells of text,
a sort key, a link); the templates (report/templates/_macros.html) lay them out. Every section of
the page (:mod:`videmo.report.sections`) builds its tables with these."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from videmo.evaluate.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL
from videmo.store import safe_name

CI_HEAD = f"{CI_LEVEL:.0%} CI"
CI_METHOD = (f"{CI_LEVEL:.0%} percentile bootstrap over clips ({BOOTSTRAP_RESAMPLES} resamples, "
             f"numpy seed {BOOTSTRAP_SEED})")


# ------------------------------------------------------------------ values as text
def missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def pct(value: Any, digits: int = 1) -> str:
    """A rate as a percentage; None / NaN (nothing to rate) as "n/a"."""
    return "n/a" if missing(value) else f"{float(value):.{digits}%}"


def dec(value: Any, digits: int = 3) -> str:
    return "n/a" if missing(value) else f"{float(value):.{digits}f}"


def count(value: Any) -> str:
    return "" if missing(value) else str(int(value))


def interval(low: Any, high: Any, form: Callable[[Any], str] = pct) -> str:
    """A confidence interval as "a - b" ("" when there is none)."""
    return "" if missing(low) or missing(high) else f"{form(low)} - {form(high)}"


def data_uri(path: Path | None) -> str | None:
    """A PNG as a data: URI (None when there is no such file: figures off or not drawn)."""
    if path is None or not Path(path).is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def anchor(clip_id: str) -> str:
    """The element id of a clip's timeline section (safe_name: unique, no spaces)."""
    return "timeline-" + safe_name(clip_id)


# ------------------------------------------------------------------ tables for the templates
@dataclass(frozen=True)
class Cell:
    text: str
    sort: str | None = None  # data-sort: the raw value the script sorts by ("" sorts last)
    href: str | None = None  # an in-page anchor or a relative path, never a URL
    css: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    title: str = ""  # tooltip: what the column means
    numeric: bool = False


@dataclass
class Row:
    cells: list[Cell]
    attrs: dict[str, str] = field(default_factory=dict)  # data-* attributes for the filter


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[Row]
    sortable: bool = False
    caption: str = ""


def sort_key(value: Any) -> str:
    if missing(value):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


CellMaker = Callable[[pd.Series], Cell]


def value(column: str, form: Callable[[Any], str] = str) -> CellMaker:
    """A cell showing ``form(row[column])``, sorted by the raw value."""
    return lambda r: Cell(form(r[column]), sort_key(r[column]))


def ci_cell(low: str, high: str, form: Callable[[Any], str] = pct) -> CellMaker:
    """A confidence interval's cell (empty when the row has none, e.g. an older run)."""
    return lambda r: Cell(interval(r.get(low), r.get(high), form), sort_key(r.get(low)))


def table_of(df: pd.DataFrame, table_id: str, spec: Iterable[tuple[Column, CellMaker]],
             sortable: bool = True, caption: str = "") -> Table:
    """A table with one row per row of ``df`` and one column per (heading, cell maker)."""
    spec = list(spec)
    rows = [Row([make(r) for _, make in spec]) for _, r in df.iterrows()]
    return Table(table_id, [c for c, _ in spec], rows, sortable, caption)


def table_from_frame(df: pd.DataFrame, table_id: str,
                     columns: Iterable[tuple[str, str, Callable[[Any], str]]],
                     sortable: bool = True, caption: str = "") -> Table:
    """A table of ``df``'s columns: (column, heading, formatter) each; sorted by raw values."""
    return table_of(df, table_id, [
        (Column(h, numeric=pd.api.types.is_numeric_dtype(df[c])
                and not pd.api.types.is_bool_dtype(df[c])), value(c, form))
        for c, h, form in columns], sortable, caption)


def key_value_table(table_id: str, items: Iterable[tuple[str, Any]], caption: str = "") -> Table:
    rows = [Row([Cell(str(k)), Cell(v if isinstance(v, str) else json.dumps(v, default=str))])
            for k, v in items]
    return Table(table_id, [Column("key"), Column("value")], rows, False, caption)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested config as (dotted key, value) pairs: ``report.labels``, ..."""
    out: list[tuple[str, Any]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and all(isinstance(x, str) for x in v) and not prefix:
            out.extend(flatten(v, key + "."))
        else:
            out.append((key, v))
    return out
