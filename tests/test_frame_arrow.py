"""The extraction writes its tables with pyarrow alone (videmo.arrow, schema.frame_arrow_schema,
RunDir.manifest_cells); these hold what it writes to what the pandas route wrote before, cell
for cell, so a reader with pandas sees the same frames.parquet and manifest.csv."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from videmo import arrow, schema
from videmo.config import TracksConfig
from videmo.extract.pipeline import SCORED_COLUMNS, frame_table
from videmo.extract.tracks import assign_tracks
from videmo.store import RunDir


def pandas_frame_table(rows: list[tuple], tracks: TracksConfig) -> pd.DataFrame:
    """The per-frame table as the pandas route made it (until 2026-12-07)."""
    df = pd.DataFrame.from_records(rows, columns=list(SCORED_COLUMNS))
    df[schema.TRACK] = -1
    for _, part in df.groupby(schema.CLIP_ID, sort=False):
        boxes = part[list(schema.BOX)].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        df.loc[part.index, schema.TRACK] = assign_tracks(
            part[schema.FRAME_INDEX].to_numpy(), boxes, min_iou=tracks.min_iou,
            max_shift=tracks.max_shift, max_gap=tracks.max_gap)
    return df.astype(schema.FRAME_DTYPES)


def rows_of_two_clips() -> list[tuple]:
    rng = np.random.default_rng(3)
    nan7 = (math.nan,) * len(schema.EMOTIONS)
    rows = []
    for clip in ("clip b", "clip-á"):  # not in order; a non-ASCII id
        for f in range(12):
            if f % 5 == 3:  # a frame without a face
                rows.append((clip, f * 20, f / 1.5, 0, -1, None, None, None, None, math.nan,
                             *nan7))
                continue
            faces = 2 if f % 4 == 0 else 1
            for i in range(faces):
                p = rng.dirichlet(np.ones(len(schema.EMOTIONS)))
                conf = math.nan if f == 1 else float(rng.uniform(0.5, 1.0))
                rows.append((clip, f * 20, f / 1.5, faces, i, 100 + 3 * f + 200 * i, 50 + f,
                             60, 61, conf, *map(float, p)))
    return rows


def test_the_arrow_schema_is_the_one_pandas_writes():
    ours = schema.frame_arrow_schema()
    theirs = pa.Table.from_pandas(schema.empty_frame_table(), preserve_index=False).schema
    assert ours.equals(theirs, check_metadata=False)
    assert json.loads(ours.metadata[b"pandas"]) == json.loads(theirs.metadata[b"pandas"])


def test_the_per_frame_table_is_the_pandas_route_cell_for_cell():
    tracks = TracksConfig()
    rows = rows_of_two_clips()
    ours = frame_table(rows, tracks)
    theirs = pa.Table.from_pandas(pandas_frame_table(rows, tracks), preserve_index=False)
    assert ours.equals(theirs, check_metadata=True)
    assert ours.column(schema.BOX[0]).null_count == 4  # the frames without a face
    assert ours.column(schema.CONFIDENCE).null_count == 4 + 2  # and the NaN confidences
    assert set(ours.column(schema.TRACK).to_pylist()) == {-1, 0, 1}
    back = ours.to_pandas()
    assert {c: str(t) for c, t in back.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in schema.FRAME_DTYPES.items()}
    # a long recording's chunks come back as Arrow without the track: the same table again
    again = frame_table(ours.select(list(SCORED_COLUMNS)), tracks)
    assert again.equals(ours, check_metadata=True)
    assert frame_table([], tracks).equals(pa.Table.from_pandas(
        schema.empty_frame_table(), preserve_index=False))


@pytest.mark.parametrize("kind,values", [
    (pa.int64(), [3, -1, 2**40]),
    (pa.int32(), [1, None, 7, None, None, 4, 5, 6, 9, None]),  # a bitmap of two bytes
    (pa.int16(), []),
    (pa.float32(), [0.1, math.nan, None, 1e-7, -3.5]),
    (pa.float64(), [1 / 3, math.nan, 2.0]),
    (pa.large_string(), ["a", "", "é, \"q\"\n", None, "x" * 300]),
])
def test_a_column_is_what_pyarrow_makes_of_the_same_values(kind, values):
    ours = arrow.column(values, kind)
    ours.validate(full=True)
    assert ours.equals(pa.array(values, type=kind, from_pandas=True))


@pytest.mark.parametrize("kind,values", [
    (pa.float32(), [0.25, math.nan, None, 3.0]),  # NaN stays a value, as pa.array keeps it
    (pa.string(), ["a", None, "ü"]),
    (pa.list_(pa.float32(), 3), [np.array([1, 2, 3], np.float32), None, [0.5, math.nan, 7]]),
    (pa.list_(pa.float32(), 4), []),
])
def test_a_side_table_column_keeps_nan_as_pa_array_does(kind, values):
    ours = arrow.column(values, kind, nan_is_null=False)
    ours.validate(full=True)
    theirs = pa.array(values, type=kind)
    assert ours.type == theirs.type and ours.null_count == theirs.null_count
    assert repr(ours.to_pylist()) == repr(theirs.to_pylist())  # NaN != NaN: compared as text


def test_the_mesh_table_is_what_pa_array_made(tmp_path):
    """The mesh's rows (a face without a mesh: NaN numbers and a null landmark list) as
    Arrow, through videmo.arrow, are the table pa.array made of them."""
    from videmo.extract.features.mesh import mesh_schema, mesh_table

    rng = np.random.default_rng(0)
    n_numbers = len(mesh_schema()) - 4
    rows = [("c", 0, 0, *rng.random(n_numbers).tolist(),
             rng.random(schema.N_LANDMARKS * 3).astype(np.float32)),
            ("c", 20, 0, *([math.nan] * n_numbers), None)]
    ours = mesh_table(rows)
    columns = list(zip(*rows, strict=True))
    theirs = pa.Table.from_arrays([pa.array(list(c), type=f.type)
                                   for c, f in zip(columns, mesh_schema(), strict=True)],
                                  schema=mesh_schema())
    import pyarrow.parquet as pq

    pq.write_table(ours, tmp_path / "ours.parquet")
    pq.write_table(theirs, tmp_path / "theirs.parquet")
    assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "theirs.parquet").read_bytes()


def test_a_part_read_back_is_the_part_written(tmp_path):
    import pyarrow.parquet as pq

    table = frame_table(rows_of_two_clips(), TracksConfig())
    pq.write_table(table, tmp_path / "part.parquet")
    back = arrow.read_parquet(tmp_path / "part.parquet")
    assert back.equals(table, check_metadata=True)
    assert arrow.read_parquet(tmp_path / "part.parquet", [schema.TRACK]).column_names == \
        [schema.TRACK]
    assert arrow.empty(table.schema).num_rows == 0
    pd.testing.assert_frame_equal(arrow.empty(schema.frame_arrow_schema()).to_pandas(),
                                  schema.empty_frame_table())


def manifest_records() -> list[dict]:
    done = {schema.CLIP_ID: "b", schema.PATH: "/c/b.mp4", schema.STATUS: schema.DONE,
            schema.REASON: "", schema.FRAMES_SAMPLED: 14, schema.FRAMES_WITH_FACE: 12,
            schema.SECONDS: 0.138, schema.FPS: 29.9697, schema.FRAME_COUNT: 67,
            schema.FRAMES_EXPECTED: 67, schema.FRAMES_DECODED: 67, schema.TRUNCATED: False,
            schema.WIDTH: 480, schema.HEIGHT: 360, schema.DURATION_S: 2.235367,
            schema.FILE_SIZE: 265922, schema.FILE_MTIME_NS: 1796561807788906031,
            schema.CONFIG_HASH: "d356867dcb5e15ac",
            schema.FINISHED_AT: "2026-12-07T01:39:03+00:00", schema.HOST: "vm"}
    failed = {schema.CLIP_ID: "a, the \"first\"", schema.PATH: "/c/a b.mp4",
              schema.STATUS: schema.FAILED, schema.REASON: "cannot open:\nbad header, sorry",
              schema.FRAMES_SAMPLED: 0, schema.FRAMES_WITH_FACE: 0, schema.SECONDS: 0.0,
              schema.FPS: None, schema.TRUNCATED: None, schema.FILE_SIZE: None,
              schema.CONFIG_HASH: "d356867dcb5e15ac", "chunk_s": 600}  # an extra key
    interrupted = {schema.CLIP_ID: "c", schema.PATH: "/c/c.mp4",
                   schema.STATUS: schema.INTERRUPTED, schema.REASON: "run interrupted",
                   schema.CONFIG_HASH: "d356867dcb5e15ac", schema.DURATION_S: 600,
                   schema.TRUNCATED: True, schema.FRAMES_SAMPLED: None}
    return [done, failed, interrupted]


@pytest.mark.parametrize("pick", [[0, 1, 2], [2, 0], [1], [2], [0], []])
def test_the_manifest_text_is_what_pandas_writes(tmp_path, monkeypatch, pick):
    records = [manifest_records()[i] for i in pick]
    monkeypatch.setattr(RunDir, "records", lambda self, **_: records)
    run = RunDir(tmp_path / "run")
    theirs = run.manifest().to_csv(index=False)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(run.manifest_cells())
    assert text.getvalue() == theirs
