"""Arrow tables built and read without pandas.

pyarrow imports pandas (about 0.3 s of CPU and 40 MB in a process) the first time
``pa.array``, ``pq.read_table`` or ``Table.to_numpy`` is called, whatever they are given: they
ask pandas whether the input is one of its objects. The extraction (one process per ``--jobs``
worker and per SLURM task) builds its per-frame tables with :func:`column`, straight from the
Arrow buffers, and reads parts with :func:`read_parquet` (``ParquetFile.read``), and so never
loads pandas; tests/test_frame_arrow.py holds the results to what the pandas route writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def column(values: Sequence, kind: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of ``kind`` (an integer, a float or ``large_string``):
    None is null, and so is NaN in a float column (as ``DataFrame.to_parquet`` writes it)."""
    n = len(values)
    if pa.types.is_large_string(kind):
        valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
        encoded = [b"" if v is None else str(v).encode("utf-8") for v in values]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        data = [pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        code = "f" if pa.types.is_floating(kind) else ("i" if pa.types.is_signed_integer(kind)
                                                       else "u")
        dtype = np.dtype(f"{code}{kind.bit_width // 8}")
        if code == "f":
            arr = np.array([np.nan if v is None else v for v in values], dtype=dtype)
            valid = ~np.isnan(arr)
        else:
            valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
            arr = np.array([0 if v is None else v for v in values], dtype=dtype)
        data = [pa.py_buffer(np.ascontiguousarray(arr))]
    else:
        raise TypeError(f"videmo.arrow.column: no route for {kind}")
    nulls = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(kind, n, [bitmap, *data], null_count=nulls)


def table(columns: Sequence[Sequence], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` (its metadata kept) from one sequence of values per field."""
    return pa.Table.from_arrays([column(v, f.type) for v, f in zip(columns, schema, strict=True)],
                                schema=schema)


def empty(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` without rows."""
    return table([[] for _ in schema], schema)


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet file as Arrow (``columns`` only, when given), without pandas."""
    return pq.ParquetFile(path).read(columns=None if columns is None else list(columns),
                                     use_pandas_metadata=False)
