"""Arrow tables built and read without pandas.

pyarrow imports pandas (about 0.3 s of CPU and 40 MB in a process) the first time
``pa.array``, ``pq.read_table`` or ``Table.to_numpy`` is called, whatever they are given: they
ask pandas whether the input is one of its objects. The extraction (one process per ``--jobs``
worker and per SLURM task) builds its per-frame and side tables with :func:`column`, straight
from the Arrow buffers, and reads parts with :func:`read_parquet` (``ParquetFile.read``), and
so never loads pandas; tests/test_frame_arrow.py holds the results to what ``pa.array`` and the
pandas route make of the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def column(values: Sequence, kind: pa.DataType, *, nan_is_null: bool = True) -> pa.Array:
    """``values`` as an Arrow array of ``kind`` (an integer, a float, a string or a fixed-size
    list of floats): None is null; NaN in a float column is null too with ``nan_is_null`` (as
    ``DataFrame.to_parquet`` writes the per-frame table), else a NaN value (as ``pa.array``
    keeps it: the side tables). A list row is any sequence of ``kind.list_size`` numbers."""
    n = len(values)
    valid = np.ones(n, dtype=bool) if isinstance(values, np.ndarray) else \
        np.fromiter((v is not None for v in values), dtype=bool, count=n)
    children = None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        encoded = [b"" if v is None else str(v).encode("utf-8") for v in values]
        offsets = np.zeros(n + 1, dtype=np.int64 if pa.types.is_large_string(kind) else np.int32)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        data = [pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        dtype = _numpy_dtype(kind)
        fill = np.nan if pa.types.is_floating(kind) else 0
        arr = values.astype(dtype, copy=False) if isinstance(values, np.ndarray) else \
            np.array([fill if v is None else v for v in values], dtype=dtype)
        if nan_is_null and pa.types.is_floating(kind):
            valid &= ~np.isnan(arr)
        data = [pa.py_buffer(np.ascontiguousarray(arr))]
    elif pa.types.is_fixed_size_list(kind) and pa.types.is_floating(kind.value_type):
        size, dtype = kind.list_size, _numpy_dtype(kind.value_type)
        flat = np.zeros((n, size), dtype=dtype)
        for i, v in enumerate(values):
            if v is not None:
                flat[i] = np.asarray(v, dtype=dtype).reshape(size)
        data = []
        children = [column(flat.reshape(-1), kind.value_type, nan_is_null=False)]
    else:
        raise TypeError(f"videmo.arrow.column: no route for {kind}")
    nulls = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(kind, n, [bitmap, *data], null_count=nulls, children=children)


def _numpy_dtype(kind: pa.DataType) -> np.dtype:
    code = "f" if pa.types.is_floating(kind) else (
        "i" if pa.types.is_signed_integer(kind) else "u")
    return np.dtype(f"{code}{kind.bit_width // 8}")


def table(columns: Sequence[Sequence], schema: pa.Schema, *,
          nan_is_null: bool = True) -> pa.Table:
    """A table of ``schema`` (its metadata kept) from one sequence of values per field."""
    return pa.Table.from_arrays([column(v, f.type, nan_is_null=nan_is_null)
                                 for v, f in zip(columns, schema, strict=True)], schema=schema)


def empty(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` without rows."""
    return table([[] for _ in schema], schema)


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet file as Arrow (``columns`` only, when given), without pandas."""
    return pq.ParquetFile(path).read(columns=None if columns is None else list(columns),
                                     use_pandas_metadata=False)
