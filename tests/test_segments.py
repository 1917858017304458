"""Segments and windows of long recordings as report clips (issue 21, items 1-3): parsing every
bad row, assembly against hand-computed frame sets, overlaps, and re-segmenting a finished run
without touching a video."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.evaluate.assemble import assemble, covers, segment_rows
from videmo.evaluate.segments import (
    Segment,
    SegmentsError,
    check_segments,
    format_time,
    load_segments,
    parse_time,
    read_segments,
    span_id,
    windows,
)
from videmo.extract.pipeline import frame_table
from videmo.report.build import build_report
from videmo.store import RunDir, write_parquet_atomic, write_text_atomic

from .conftest import make_config
from .test_report import ANGRY, HAPPY, NEUTRAL


@pytest.mark.parametrize(("text", "seconds"), [
    ("12", 12.0), ("12.5", 12.5), ("12,5", 12.5), (".5", 0.5), ("0:07", 7.0),
    ("01:02.250", 62.25), ("1:02:03", 3723.0), ("00:01:02.500", 62.5), ("10:00:00,1", 36000.1),
])
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1:60", "1:2:3:4", "-3", "12s", "1:75.0"])
def test_parse_time_refuses(text):
    with pytest.raises(ValueError, match="not a time"):
        parse_time(text)


def test_format_time_and_ids_sort_as_they_read():
    assert format_time(62.5) == "00:01:02.500" and format_time(3723.0004) == "01:02:03.000"
    ids = [span_id("r", s, s + 5) for s in (5, 30, 100, 1000)]
    assert ids == sorted(ids)


def write(path, text, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_read_a_semicolon_file_with_bom_decimal_commas_and_spreadsheet_names(tmp_path):
    path = write(tmp_path / "s.csv", "Video File;Begin Time;End Time;Code;Speaker\r\n"
                                     "debate;00:00:01,5;3,25;happy;Biden\r\n"
                                     "debate.mp4;4;00:00:06;;Trump\r\n", bom=True)
    seg = read_segments(path)
    assert seg.delimiter == ";"
    assert seg.columns == {"recording": 0, "start": 1, "end": 2, "label": 3, "person": 4}
    segments, issues = check_segments(seg, ["debate"], {"debate": 10.0})
    assert not issues.any()
    assert segments == [
        Segment("debate@00:00:01.500-00:00:03.250", "debate", 1.5, 3.25, "positive", "Biden", 2),
        Segment("debate@00:00:04.000-00:00:06.000", "debate", 4.0, 6.0, None, "Trump", 3)]


def test_columns_named_in_the_config_and_a_tab_file(tmp_path):
    path = write(tmp_path / "s.tsv", "T\tA\tB\tX\tSeg\nr1\t1\t2\tneg\tq1\n")
    seg = read_segments(path, {"recording": "t", "start": "A", "end": "b", "label": "x",
                               "id": "seg"})
    segments, _ = check_segments(seg, ["r1"], {"r1": None})
    assert segments == [Segment("q1", "r1", 1.0, 2.0, "negative", None, 2)]
    with pytest.raises(SegmentsError, match=r"segments_columns.start' is 'Begin'.*'A'"):
        read_segments(path, {"start": "Begin"})
    with pytest.raises(SegmentsError, match="unknown role.*'speaker'"):
        read_segments(path, {"speaker": "X"})


def test_a_file_without_a_header_naming_the_columns_is_refused(tmp_path):
    path = write(tmp_path / "s.csv", "debate,1,2\ndebate,3,4\n")
    with pytest.raises(SegmentsError, match="no recording / start / end column.*"
                                            "corpus.segments_columns"):
        read_segments(path)


BAD = """recording,start,end,label,id
debate,1,2,positive,ok1
,1,2,positive,x2
nowhere,1,2,positive,x3
debate,one,2,positive,x4
debate,1,,positive,x5
debate,5,5,positive,x6
debate,6,4,positive,x7
debate,8,00:00:11,positive,x8
debate,1,2,bored,x9
debate,2,3,neutral,ok1
debate,2,3,neutral,ok11
"""


def test_every_bad_row_is_named_by_its_line(tmp_path):
    seg = read_segments(write(tmp_path / "s.csv", BAD))
    segments, issues = check_segments(seg, ["debate", "other"], {"debate": 10.0, "other": 3.0})
    assert [s.segment_id for s in segments] == ["ok1", "ok11"]
    why = dict(issues.rows)
    assert sorted(why) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert why[3] == "no recording"
    assert "unknown recording 'nowhere'" in why[4]
    assert "start: not a time: 'one'" in why[5]
    assert why[6] == "no end time"
    assert "end 5 is not after start 5" in why[7] and "end 4 is not after start 6" in why[8]
    assert "beyond the end of debate (10.000 s)" in why[9]
    assert "unknown label 'bored'" in why[10]
    assert "also on line 2" in why[11]


def test_strict_labels_stops_on_bad_rows_else_they_are_left_out(tmp_path):
    write(tmp_path / "s.csv", BAD)
    cfg = make_config(tmp_path, tmp_path, corpus={"segments": "s.csv"})
    segments, issues = load_segments(cfg, ["debate"], {"debate": 10.0})
    assert len(segments) == 2 and len(issues.rows) == 9
    strict = make_config(tmp_path, tmp_path, corpus={"segments": "s.csv"},
                         report={"strict_labels": True})
    with pytest.raises(SegmentsError, match=r"9 bad row\(s\): line 3: no recording; line 4"):
        load_segments(strict, ["debate"], {"debate": 10.0})


def test_windows_hand_computed():
    got = [(w.recording, w.start_s, w.end_s) for w in windows({"a": 70.0, "b": None}, 30)]
    assert got == [("a", 0, 30), ("a", 30, 60), ("a", 60, 70)]
    got = [(w.start_s, w.end_s) for w in windows({"a": 50.0}, 30, 20)]
    assert got == [(0, 30), (20, 50), (40, 50)]
    assert windows({"a": 30.0}, 30)[0].segment_id == "a@00:00:00.000-00:00:30.000"


def frames_of(recordings):
    """A per-frame table: recording -> list of (frame_index, time_s, probs or None)."""
    rows = []
    for rec, frames in recordings.items():
        for idx, t, p in frames:
            if p is None:
                rows.append((rec, idx, t, 0, -1, None, None, None, None, np.nan, *[np.nan] * 7))
            else:
                rows.append((rec, idx, t, 1, 0, 10, 10, 50, 50, np.nan, *p))
    return frame_table(rows).to_pandas()


def test_assembly_against_hand_computed_frame_sets_and_overlaps_once():
    # recording r: a frame every 0.5 s, frames 0..19 (0.0 .. 9.5 s)
    frames = frames_of({"r": [(i, i * 0.5, HAPPY) for i in range(20)],
                        "q": [(i, i * 1.0, ANGRY) for i in range(5)]})
    segs = [Segment("s1", "r", 1.0, 3.0), Segment("s2", "r", 2.0, 2.6),  # nested in s1
            Segment("s3", "r", 2.5, 4.0),  # overlaps s1
            Segment("s4", "q", 3.5, 100.0), Segment("s5", "r", 9.6, 9.9)]  # no frame
    rows = segment_rows(frames, segs)
    got = {s: sorted(part[schema.FRAME_INDEX]) for s, part in rows.groupby(schema.CLIP_ID)}
    assert got == {"s1": [2, 3, 4, 5], "s2": [4, 5], "s3": [5, 6, 7], "s4": [4]}
    # frame 5 (2.5 s) is in three segments: one analysed row, assembled three times, same values
    five = rows[rows[schema.FRAME_INDEX] == 5]
    assert len(five) == 3 and (five[list(schema.EMOTIONS)].nunique() == 1).all()
    assert len(frames[(frames[schema.CLIP_ID] == "r") & (frames[schema.FRAME_INDEX] == 5)]) == 1


def test_assemble_states_golden_groups_and_unsampled_times():
    frames = frames_of({"r": [(i, float(i), HAPPY) for i in range(10)]})
    segs = [Segment("a", "r", 0, 4, "positive", "Ann"), Segment("b", "r", 4, 9, None, None),
            Segment("c", "bad", 0, 1, "neutral"), Segment("d", "r", 8, 12)]
    view = assemble(frames, segs, {"r": schema.DONE, "bad": schema.FAILED},
                    covered={"r": [(0.0, 5.0), (5.0, 10.0)]}, group_of_recording={"r": "deb"})
    assert view.states == {"a": "done", "b": "done", "c": "failed", "d": "not_extracted"}
    assert [s.segment_id for s in view.unsampled] == ["d"]
    assert view.golden == {"a": "positive", "c": "neutral"}
    assert view.groups == {"a": "Ann", "b": "deb", "c": "bad", "d": "deb"}
    assert sorted(view.frames[schema.CLIP_ID].unique()) == ["a", "b"]


@pytest.mark.parametrize(("spans", "start", "end", "inside"), [
    (None, 0, 1e9, True), ([(0, 5), (5, 10)], 2, 9, True), ([(0, 5), (6, 10)], 2, 9, False),
    ([(3, 10)], 2, 4, False), ([(0, 10)], 8, 10, True), ([(0, 10)], 8, 11, False)])
def test_covers(spans, start, end, inside):
    assert covers(spans, start, end) is inside


# -------------------------------------------------------------- the report over a fake run
def recording_run(tmp_path, report=None, **corpus):
    """A run of two recordings with hand-written records and rows (no video is read)."""
    root = tmp_path / "corpus"
    root.mkdir(exist_ok=True)
    tracks = {"deb": [(i, i * 1.0, HAPPY if i < 30 else ANGRY if i < 60 else NEUTRAL)
                      for i in range(90)],
              "talk": [(i, i * 1.0, NEUTRAL if i % 2 else None) for i in range(40)]}
    for rec in tracks:
        (root / f"{rec}.mp4").write_bytes(b"")
    cfg = make_config(tmp_path, root, corpus=corpus, report={"figures": True,
                                                               **(report or {})})
    run = RunDir.prepare(cfg)
    for rec, rows in tracks.items():
        rec_dict = {**dict.fromkeys(schema.MANIFEST_COLUMNS), schema.CLIP_ID: rec,
                    schema.PATH: str(root / f"{rec}.mp4"), schema.STATUS: schema.DONE,
                    schema.CONFIG_HASH: cfg.extract_hash(), schema.SECONDS: 2.0,
                    schema.FRAMES_SAMPLED: len(rows), schema.DURATION_S: float(len(rows)),
                    schema.FPS: 1.0, schema.FRAMES_DECODED: len(rows)}
        write_parquet_atomic(frames_of({rec: rows}), run.part_path(rec))
        write_text_atomic(run.record_path(rec), json.dumps(rec_dict) + "\n")
    run.consolidate(cfg.extract_hash())
    return run, cfg


SEGMENTS = ("recording;start;end;label;speaker\n"
            "deb;00:00:00;00:00:30;positive;Biden\n"
            "deb;00:00:25;00:01:05;negative;Trump\n"   # overlaps the first
            "deb;50;55;neg;Trump\n"                    # nested in the second
            "talk;0;20;neutral;Host\n"
            "talk;10;100;neutral;Host\n"               # beyond talk's end (40 s)
            "ghost;0;1;neutral;Host\n")                # not a recording of the corpus


def test_segments_are_clips_in_every_output(tmp_path):
    (tmp_path / "seg.csv").write_text(SEGMENTS)
    run, cfg = recording_run(tmp_path, segments="seg.csv")
    rep = build_report(run, cfg)
    out = tmp_path / "run" / "report"
    clips = pd.read_csv(out / "clips.csv").set_index(schema.FILENAME)
    ids = ["deb@00:00:00.000-00:00:30.000", "deb@00:00:25.000-00:01:05.000",
           "deb@00:00:50.000-00:00:55.000", "talk@00:00:00.000-00:00:20.000"]
    assert list(clips.index) == ids
    assert list(clips.columns[:4]) == ["recording", "start_s", "end_s", schema.PREDICT]
    assert list(clips["recording"]) == ["deb", "deb", "deb", "talk"]
    assert list(clips["end_s"]) == [30, 65, 55, 20]
    # frames 0..29 happy, 25..64: 25..29 happy, 30..59 angry, 60..64 neutral
    assert list(clips[schema.FRAMES_SAMPLED]) == [30, 40, 5, 20]
    assert list(clips[schema.FRAMES_WITH_FACE]) == [30, 40, 5, 10]
    assert list(clips[schema.PREDICT]) == ["Pos", "Neg", "Neg", "Neut"]
    assert list(clips[schema.GOLDEN]) == ["Pos", "Neg", "Neg", "Neut"]
    assert list(clips[schema.GROUP]) == ["Biden", "Trump", "Trump", "Host"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall"]["labelled"] == 4 and m["overall"]["accuracy"] == 1.0
    assert set(m["groups"]) == {"Biden", "Trump", "Host"}
    assert m["segments"]["clips"] == 4 and len(m["segments"]["bad_rows"]) == 2
    assert "line 6: end 100" in m["segments"]["bad_rows"][0]
    assert "line 7: unknown recording 'ghost'" in m["segments"]["bad_rows"][1]
    assert "segments: line 6" in (out / "summary.txt").read_text()
    html = (out / "report.html").read_text()
    assert 'id="recordings"' in html and "clip labels along recording deb" in html
    assert (out / "figures" / "recordings").is_dir()
    assert rep.metrics.complete


def test_windows_label_every_stretch_of_an_unlabelled_recording(tmp_path):
    run, cfg = recording_run(tmp_path, window_s=30)
    build_report(run, cfg)
    clips = pd.read_csv(tmp_path / "run" / "report" / "clips.csv")
    assert list(zip(clips["recording"], clips["start_s"], clips["end_s"],
                    clips[schema.PREDICT], strict=True)) == [
        ("deb", 0, 30, "Pos"), ("deb", 30, 60, "Neg"), ("deb", 60, 90, "Neut"),
        ("talk", 0, 30, "Neut"), ("talk", 30, 40, "Neut")]
    assert list(clips[schema.GROUP]) == ["deb"] * 3 + ["talk"] * 2


def test_resegment_a_finished_run_without_touching_a_video(tmp_path, capsys, monkeypatch):
    """`videmo report RUN --set corpus.segments=...` relabels from the stored table: the
    recordings are empty files that no decoder could open, and opening any video fails."""
    run, cfg = recording_run(tmp_path)
    (tmp_path / "other.csv").write_text("recording,start,end\ndeb,0,50\ndeb,50,90\n")
    import cv2

    def no_video(*a, **k):
        raise AssertionError("a report must not open a video")

    monkeypatch.setattr(cv2, "VideoCapture", no_video)
    t0 = time.perf_counter()
    assert main(["report", str(run.path), "--set", f"corpus.segments={tmp_path / 'other.csv'}",
                 "--out", str(tmp_path / "reseg")]) == 0
    seconds = time.perf_counter() - t0
    clips = pd.read_csv(tmp_path / "reseg" / "clips.csv")
    assert list(clips[schema.FILENAME]) == ["deb@00:00:00.000-00:00:50.000",
                                            "deb@00:00:50.000-00:01:30.000"]
    # 0-50 s: 30 happy and 20 angry frames; 50-90 s: 10 angry and 30 neutral
    assert list(clips[schema.PREDICT]) == ["Pos", "Neut"]
    assert main(["report", str(run.path), "--set", "corpus.window_s=45",
                 "--out", str(tmp_path / "rewin")]) == 0
    clips = pd.read_csv(tmp_path / "rewin" / "clips.csv")
    assert len(clips) == 2 + 1  # deb: 0-45, 45-90; talk: 0-40
    print(f"re-segmented in {seconds:.2f} s")
    assert seconds < 60  # seconds, not an extraction; the number is printed for the record


def test_segments_outside_the_sampled_times_are_not_extracted_and_said_so(tmp_path, caplog):
    (tmp_path / "seg.csv").write_text("recording,start,end\ndeb,0,10\ndeb,20,40\n")
    run, cfg = recording_run(tmp_path, segments="seg.csv")
    rec = run.record("deb")
    rec["sampled_spans"] = [[0, 15]]  # a recording extracted in chunks, only up to 15 s
    write_text_atomic(run.record_path("deb"), json.dumps(rec) + "\n")
    rep = build_report(run, cfg)
    assert rep.metrics.segments["unsampled"] == ["deb@00:00:20.000-00:00:40.000"]
    assert dict(zip(rep.clips[schema.FILENAME], rep.clips[schema.STATUS], strict=True)) == {
        "deb@00:00:00.000-00:00:10.000": "done", "deb@00:00:20.000-00:00:40.000":
            "not_extracted"}
    assert "extract only those times" in rep.summary()


def test_bad_rows_are_reported_before_any_work(tmp_path, sample_corpus, capsys, caplog):
    """`videmo config check` (and extract, run, submit: the same preflight) names the bad rows
    of the segments file, with the recordings' lengths from their containers."""
    (tmp_path / "seg.csv").write_text(
        "recording,start,end\n1001_DFA_ANG_XX,0,1\n1001_DFA_ANG_XX,1,100\nnope,0,1\n"
        "1001_DFA_HAP_XX,0:01,0:00.5\n")
    yaml = tmp_path / "job.yaml"
    yaml.write_text(f"corpus: {{paths: [{sample_corpus}], segments: seg.csv}}\n"
                    f"run: {{out: {tmp_path / 'run'}}}\n")
    assert main(["config", "check", str(yaml)]) == 0
    assert "corpus.segments: " in capsys.readouterr().out
    warned = [r.getMessage() for r in caplog.records if "segments" in r.getMessage()]
    assert any("line 3: end 100 (100.000 s) is beyond the end of 1001_DFA_ANG_XX" in w
               for w in warned)
    assert any("line 4: unknown recording 'nope'" in w for w in warned)
    assert any("line 5: end 0:00.5 is not after start 0:01" in w for w in warned)
    yaml.write_text(yaml.read_text() + "report: {strict_labels: true}\n")
    assert main(["config", "check", str(yaml)]) == 2
    err = capsys.readouterr().err
    assert "3 bad row(s): line 3" in err and "line 5" in err and not (tmp_path / "run").exists()


def test_learn_reads_segments_as_its_clips(tmp_path):
    """videmo learn's clips are the segments too: ids, labels from the label column, groups
    from the person column."""
    from videmo.evaluate.learn import run as learn_run

    (tmp_path / "seg.csv").write_text(SEGMENTS)
    run, cfg = recording_run(tmp_path, segments="seg.csv")
    data = learn_run.labelled_clips(run, cfg, set())
    assert data.ids == ["deb@00:00:00.000-00:00:30.000", "deb@00:00:25.000-00:01:05.000",
                        "deb@00:00:50.000-00:00:55.000", "talk@00:00:00.000-00:00:20.000"]
    assert list(data.y) == ["positive", "negative", "negative", "neutral"]
    assert list(data.units) == ["Biden", "Trump", "Trump", "Host"]
    assert sorted(set(data.frames[schema.CLIP_ID])) == data.ids
