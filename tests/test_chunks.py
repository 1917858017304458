"""Long recordings in chunks (issue 21, item 4) on a real recording made at test time: the six
sample clips concatenated with ffmpeg (H.264, a keyframe every second), and a variable-frame-rate
copy of it. Chunk boundaries are exact by timestamp, a chunked run's table equals an unchunked
one's, and a run killed inside a chunk resumes with the chunks it finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.execute import chunked
from videmo.execute.local import extract
from videmo.extract.chunks import plan_chunks, planned_picks, read_clock, sample_chunk
from videmo.extract.frames import SourceInfo, sample_frames
from videmo.schema import Clip
from videmo.store import RunDir

from . import browser
from .conftest import SAMPLE_CLIPS, make_config

ffmpeg_tool = browser.ffmpeg_tool  # installs ffmpeg when missing (a fixture)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recordings(ffmpeg_tool, tmp_path_factory) -> dict[str, Path]:
    """``cfr``: the sample clips, one after another (12.7 s, 380 frames at 29.97 fps);
    ``vfr``: the same with frames dropped unevenly (every 3rd kept before 5 s, all after), so
    the frame intervals vary and indices cannot be computed from times."""
    root = tmp_path_factory.mktemp("recordings")
    listing = root / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in SAMPLE_CLIPS))
    cfr, vfr = root / "cfr" / "debate.mp4", root / "vfr" / "debate.mp4"
    cfr.parent.mkdir()
    vfr.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", str(cfr)],
                   check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(cfr), "-vf",
                    "select='not(mod(n\\,3))+gt(t\\,5)'", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "15", str(vfr)], check=True)
    return {"cfr": cfr, "vfr": vfr}


@pytest.fixture(scope="module")
def unchunked(recordings, tmp_path_factory):
    """``unchunked(kind, every_n)``: an unchunked extract of the recording (its per-frame
    table and run directory), made once per module for the tests that compare a chunked run
    with it; they only read it."""
    runs: dict[tuple[str, int], tuple[pd.DataFrame, Path]] = {}

    def get(kind: str, every_n: int) -> tuple[pd.DataFrame, Path]:
        if (kind, every_n) not in runs:
            base = tmp_path_factory.mktemp(f"unchunked-{kind}-{every_n}")
            whole = extract(make_config(base, recordings[kind].parent,
                                        sampling={"every_n": every_n}, run={"chunk_s": None}),
                            progress=False)
            assert whole.ok
            runs[kind, every_n] = (whole.table, base / "run")
        return runs[kind, every_n]

    return get


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
@pytest.mark.parametrize("chunk_s", [0.7, 2.0, 5.0])
def test_every_frame_in_exactly_one_chunk_with_its_sequential_timestamp(recordings, kind,
                                                                        chunk_s, tmp_path):
    """Every frame sampled (every_n: 1), chunk by chunk: the same indices, timestamps and
    pixels as one sequential pass, each frame once, each inside its chunk's time span."""
    path = recordings[kind]
    cfg = make_config(tmp_path, path.parent, sampling={"every_n": 1})
    clip = Clip("debate", path)
    seq = [(f.index, f.time_s, int(f.image[::7, ::7].sum())) for f in
           sample_frames(clip, cfg, SourceInfo())]
    clock = read_clock(path)
    assert clock is not None and len(clock.times) == len(seq)
    if kind == "vfr":
        steps = np.diff([t for _, t, _ in seq])
        assert steps.max() > 2.5 * steps.min()  # really variable
    got = []
    for span in plan_chunks(clock, cfg.sampling, chunk_s):
        frames = [(f.index, f.time_s, int(f.image[::7, ::7].sum())) for f in
                  sample_chunk(clip, cfg, clock, span, SourceInfo())]
        assert [i for i, _, _ in frames] == list(range(span.lo, span.hi))
        assert all(span.start_s - 1e-9 <= t < span.end_s - 1e-9 for _, t, _ in frames)
        got += frames
    assert got == seq


def test_a_chunk_seeks_instead_of_decoding_from_the_start(recordings, tmp_path, monkeypatch):
    """The seek lands before the chunk (so nothing from the start is decoded twice over)."""
    from videmo.extract import chunks as chunks_mod

    path = recordings["cfr"]
    cfg = make_config(tmp_path, path.parent, sampling={"every_n": 5})
    clock = read_clock(path)
    seeks = []
    real = chunks_mod._decode_span

    def spy(clip, clock_, span, picks, info, seek_to, after):
        seeks.append((span.index, seek_to))
        return real(clip, clock_, span, picks, info, seek_to, after)

    monkeypatch.setattr(chunks_mod, "_decode_span", spy)
    spans = plan_chunks(clock, cfg.sampling, 4.0)
    for span in spans:
        list(sample_chunk(Clip("debate", path), cfg, clock, span, SourceInfo()))
    assert [k for k, _ in seeks] == [s.index for s in spans]  # one pass per chunk, no retry
    assert all(s > 0 for k, s in seeks if k > 0)


@pytest.mark.parametrize("sampling", [{"every_n": 7}, {"fps": 3.0},
                                      {"every_n": 4, "start_s": 1.3, "end_s": 9.1},
                                      {"every_n": 2, "max_frames": 50}])
def test_planned_picks_are_the_sequential_pass_picks(recordings, tmp_path, sampling):
    path = recordings["vfr"]
    cfg = make_config(tmp_path, path.parent, sampling=sampling)
    seq = [f.index for f in sample_frames(Clip("debate", path), cfg, SourceInfo())]
    assert planned_picks(read_clock(path), cfg.sampling).tolist() == seq


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_chunked_run_table_equals_unchunked(recordings, unchunked, kind, tmp_path):
    """The merged per-frame table of a chunked run (two workers) is the unchunked table, to
    the bit: frames, timestamps, boxes, scores and face tracks."""
    root = recordings[kind].parent
    a, a_run = unchunked(kind, 3)
    cut = extract(make_config(tmp_path / "b", root, sampling={"every_n": 3},
                              run={"chunk_s": 2.5, "jobs": 2}), progress=False)
    assert cut.ok and cut.done == 1
    b = cut.table
    assert len(a) > 0 and a.equals(b)
    chunk_dir = chunked.chunk_dir(RunDir(tmp_path / "b" / "run"), "debate")
    assert len(list(chunk_dir.glob("*.json"))) == 5  # 12.7 s in 2.5 s chunks, the last 2.7 s
    m_a = pd.read_csv(a_run / "manifest.csv").iloc[0]
    m_b = pd.read_csv(tmp_path / "b" / "run" / "manifest.csv").iloc[0]
    for col in (schema.FRAMES_SAMPLED, schema.FRAMES_WITH_FACE, schema.FRAMES_DECODED,
                schema.WIDTH, schema.HEIGHT, schema.STATUS):
        assert m_a[col] == m_b[col], col
    assert m_b[schema.DURATION_S] == pytest.approx(m_a[schema.DURATION_S], abs=1e-6)


def test_a_kill_inside_a_chunk_loses_only_that_chunk(recordings, unchunked, tmp_path):
    """SIGKILL a run while it works on a chunk: the chunks finished before are kept and not
    redone on the rerun, and the result equals an unchunked run. (Every 2nd frame: a chunk is
    about 30 frames of work, far longer than the 20 ms between looks at the chunk records.)"""
    root = recordings["cfr"].parent
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{root}]}}\nsampling: {{every_n: 2}}\n"
                   f"run: {{out: {tmp_path / 'run'}, chunk_s: 2.0}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "videmo.cli", "extract", str(job),
                             "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    chunk_dir = chunked.chunk_dir(RunDir(tmp_path / "run"), "debate")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(chunk_dir.glob("*.json"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = {p.name: json.loads(p.read_text())[schema.FINISHED_AT]
              for p in chunk_dir.glob("*.json")}
    assert 2 <= len(before) < 6, "the run was killed after, not inside, its chunks"
    rerun = subprocess.run([sys.executable, "-m", "videmo.cli", "extract", str(job),
                            "--no-progress"], env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = {p.name: json.loads(p.read_text())[schema.FINISHED_AT]
             for p in chunk_dir.glob("*.json")}
    # 12.7 s in 2 s chunks: six, the last 0.7 s joined to the sixth
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())
    whole, _ = unchunked("cfr", 2)
    assert whole.equals(RunDir(tmp_path / "run").frames())


def test_segments_extract_only_the_chunks_they_reach_and_more_later(recordings, tmp_path,
                                                                    caplog):
    """With corpus.segments only the chunks segments reach are extracted; a report with other
    segments says which times were never sampled, and a rerun extracts only those chunks."""
    root = recordings["cfr"].parent
    (tmp_path / "a.csv").write_text("recording,start,end,label\ndebate,0.5,1.5,neutral\n"
                                    "debate,8.2,9,neutral\n")
    (tmp_path / "b.csv").write_text("recording,start,end\ndebate,0.5,1.5\ndebate,4,5\n")
    cfg = make_config(tmp_path, root, sampling={"every_n": 2},
                      corpus={"segments": str(tmp_path / "a.csv")}, run={"chunk_s": 2.0})
    summary = extract(cfg, progress=False)
    run = RunDir(cfg.out_dir)
    done = sorted(p.stem for p in chunked.chunk_dir(run, "debate").glob("*.json"))
    assert done == ["00000", "00004"]  # 0-2 s and 8-10 s
    rec = run.record("debate")
    assert rec["sampled_spans"] == [[0.0, 2.0], [8.0, 10.0]]
    assert summary.table[schema.TIME_S].between(0, 2).sum() + \
        summary.table[schema.TIME_S].between(8, 10).sum() == len(summary.table)
    from videmo.report.build import build_report

    other = make_config(tmp_path, root, sampling={"every_n": 2},
                        corpus={"segments": str(tmp_path / "b.csv")}, run={"chunk_s": 2.0})
    rep = build_report(run, other)
    assert rep.metrics.segments["unsampled"] == ["debate@00:00:04.000-00:00:05.000"]
    before = {p.name: p.stat().st_mtime_ns for p in chunked.chunk_dir(run, "debate").iterdir()}
    again = extract(other, progress=False)
    assert again.done == 1
    now = {p.name: p.stat().st_mtime_ns for p in chunked.chunk_dir(run, "debate").iterdir()}
    assert sorted(set(now) - set(before)) == ["00002.json", "00002.parquet"]
    assert all(now[k] == v for k, v in before.items())
    rep = build_report(run, other)
    assert rep.metrics.segments["unsampled"] == [] and rep.metrics.complete


def test_one_recording_over_three_shards_merges_into_the_unchunked_table(recordings, unchunked,
                                                                        tmp_path):
    """`videmo extract --shard I/3` (what each SLURM array task runs) on one long recording:
    the plan deals its chunks over the shards by frames to sample; each task analyses only its
    chunks; the last to finish (or the merge job, `videmo report`) merges them; the table equals
    an unchunked run's."""
    from videmo.cli import main
    from videmo.execute import shard as shard_mod

    root = recordings["cfr"].parent
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{root}]}}\nsampling: {{every_n: 2}}\n"
                   f"run: {{out: {tmp_path / 'run'}, chunk_s: 2.0}}\n")
    for i in range(3):
        assert main(["extract", str(job), "--shard", f"{i}/3", "--no-progress"]) == 0
        run = RunDir(tmp_path / "run")
        plan = shard_mod.load_plan(run)
        mine = plan.chunks_of(i)["debate"]
        made = {int(p.stem) for p in chunked.chunk_dir(run, "debate").glob("*.json")}
        assert mine <= made
    assert sorted(plan.chunks["debate"]) == list(range(6))  # the last 0.7 s joins the sixth
    assert set(plan.chunks["debate"].values()) == {0, 1, 2}
    assert plan.clips(0) == plan.clips(1) == plan.clips(2) == ["debate"]
    assert run.is_done(Clip("debate", recordings["cfr"]), run.config())  # the last one merged
    assert main(["report", str(run.path)]) == 0
    whole, _ = unchunked("cfr", 2)
    pd.testing.assert_frame_equal(whole, pd.read_parquet(run.frames_path))


def test_a_recording_no_segment_names_is_merged_not_failed(recordings, tmp_path):
    """Two recordings share the file name ``debate`` (cfr/ and vfr/): a segment naming just
    ``debate`` names neither (it is reported as a bad row). The chunks are planned against the
    whole corpus, and merging must match the segments against the same corpus: matched against
    a recording alone, ``debate`` would name it, ask for chunks never planned, and fail it."""
    root = recordings["cfr"].parent.parent
    (tmp_path / "s.csv").write_text("recording,start,end\ncfr/debate,0.5,1.5\n"
                                    "debate,4,5\n")
    cfg = make_config(tmp_path, root, sampling={"every_n": 2}, report={"strict_labels": False},
                      corpus={"segments": str(tmp_path / "s.csv")}, run={"chunk_s": 2.0})
    summary = extract(cfg, progress=False)
    run = RunDir(cfg.out_dir)
    assert not summary.failed, [run.record(c) for c in ("cfr/debate", "vfr/debate")]
    assert run.record("vfr/debate")[schema.STATUS] == schema.DONE


@pytest.mark.parametrize("duration,chunk_s,workers,expected", [
    (180.0, 300.0, 1, (1, 300.0)),    # one worker: one pass, as before
    (180.0, 300.0, 2, (2, 90.0)),     # shorter than jobs x chunk_s: one chunk per worker
    (900.0, 300.0, 2, (4, 225.0)),    # 3 x 300 s would leave a worker idle for the last one
    (900.0, 300.0, 3, (3, 300.0)),    # already a multiple of the workers: the plan as before
    (3600.0, 300.0, 2, (12, 300.0)),
    (12.7, 2.5, 2, (5, 2.5)),       # the last 0.2 s joins the fifth chunk
    (900.04, 300.0, 2, (4, 225.01)),  # a frame over 15 minutes: not 4 x 300 with a 1-frame last
    (930.0, 300.0, 1, (3, 300.0)),    # a 30 s tail (under MIN_CHUNK_S) joins the last chunk
    (40.0, 300.0, 2, (1, 300.0)),     # two 20 s chunks would be under MIN_CHUNK_S
    (100.0, 300.0, 4, (3, 100.0 / 3)),  # as many as MIN_CHUNK_S allows
])
def test_a_recording_is_cut_for_the_workers_there_are(duration, chunk_s, workers, expected):
    from videmo.extract.chunks import MIN_CHUNK_S, chunk_count

    assert MIN_CHUNK_S == 30.0
    n, length = chunk_count(duration, chunk_s, workers)
    assert (n, length) == pytest.approx(expected)
    assert length <= chunk_s and n * length >= duration - min(MIN_CHUNK_S, chunk_s / 2) - 1e-9


def test_two_workers_cut_a_recording_shorter_than_a_chunk_and_merge_it_exactly(
        recordings, unchunked, tmp_path, monkeypatch):
    """``--jobs 2`` on a recording shorter than ``run.chunk_s`` (one chunk for one worker):
    two equal chunks, one per worker; the merged table equals the unchunked one; a report run
    with ``run.jobs: 1`` still finds the plan the chunks were made for."""
    from videmo.extract import chunks as chunks_mod

    monkeypatch.setattr(chunks_mod, "MIN_CHUNK_S", 1.0)  # the test recording is 12.7 s
    root = recordings["vfr"].parent
    whole, _ = unchunked("vfr", 3)
    cfg = make_config(tmp_path / "b", root, sampling={"every_n": 3}, run={"chunk_s": 20.0})
    assert chunked.chunk_plan(Clip("debate", recordings["vfr"]), cfg) is None  # jobs 1
    cut = extract(cfg, jobs=2, progress=False)
    assert cut.ok and cut.done == 1
    run = RunDir(tmp_path / "b" / "run")
    records = [json.loads(p.read_text()) for p in
               sorted(chunked.chunk_dir(run, "debate").glob("*.json"))]
    half = read_clock(recordings["vfr"]).duration_s / 2
    assert [x for r in records for x in (r["start_s"], r["end_s"])] == pytest.approx(
        [0.0, half, half, 2 * half])
    assert all(r[chunked.WORKERS] == 2 for r in records)
    assert whole.equals(cut.table)
    assert chunked.merge(run, Clip("debate", recordings["vfr"]), cfg) is not None  # jobs 1


def test_merging_chunks_keeps_frames_without_a_face(tmp_path):
    """A chunk's Parquet part holds a frame without a face as null boxes (pandas wrote them as
    pd.NA, Int32, before the extraction wrote Arrow): the merge's per-frame table takes them
    as missing boxes (it failed with "float() argument must be ... not 'NAType'" on a 720p
    recording with Haar, where a few frames have no face)."""
    import pyarrow.parquet as pq

    from videmo.extract.pipeline import frame_table

    nan7 = (float("nan"),) * len(schema.EMOTIONS)
    scores = (0.1,) * len(schema.EMOTIONS)
    part = pd.DataFrame.from_records(
        [("r", 0, 0.0, 1, 0, 10, 10, 50, 50, float("nan"), *scores),
         ("r", 20, 0.67, 0, -1, None, None, None, None, float("nan"), *nan7),
         ("r", 40, 1.33, 1, 0, 12, 10, 50, 50, float("nan"), *scores)],
        columns=list(schema.FRAME_COLUMNS[:-1])).astype(
        {c: t for c, t in schema.FRAME_DTYPES.items() if c != schema.TRACK})
    assert part[schema.BOX[0]].isna().sum() == 1 and str(part[schema.BOX[0]].dtype) == "Int32"
    part.to_parquet(tmp_path / "chunk.parquet", index=False)
    table = frame_table(pq.read_table(tmp_path / "chunk.parquet")).to_pandas()
    assert table[schema.TRACK].tolist() == [0, -1, 0]
    assert table[schema.BOX[0]].isna().tolist() == [False, True, False]
    assert str(table[schema.BOX[0]].dtype) == "Int32"


def test_a_worker_uses_the_planners_clock_while_the_file_is_unchanged(recordings, tmp_path,
                                                                       monkeypatch):
    """The clock travels with each chunk: a pool worker (an empty clock cache here) does not
    read every packet of the recording again; a file changed since the plan is read anew."""
    path = tmp_path / "rec" / "debate.mp4"
    path.parent.mkdir()
    path.write_bytes(recordings["cfr"].read_bytes())
    cfg = make_config(tmp_path, path.parent, sampling={"every_n": 10}, run={"chunk_s": 4.0})
    clip = Clip("debate", path)
    with RunDir.open(cfg, force=False, command="test") as run:
        units, _ = chunked.expand([clip], cfg, run, force=False)
    assert len(units) > 1 and all(u.clock is not None for u in units)
    reads = []
    real = chunked.read_clock
    monkeypatch.setattr(chunked, "read_clock", lambda p: reads.append(p) or real(p))
    monkeypatch.setattr(chunked, "_CLOCKS", {})  # a fresh worker process
    record = chunked.process_chunk(units[1], cfg, str(run.path), 1)
    assert record[schema.STATUS] == schema.DONE and reads == []
    monkeypatch.setattr(chunked, "_CLOCKS", {})
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched since the plan
    chunked.process_chunk(units[0], cfg, str(run.path), 1)
    assert reads == [path]
