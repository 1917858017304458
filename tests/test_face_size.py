"""Small faces: the recommended settings on a wide shot, and the face size in every run
(clips.csv's face_px, report.html's "Face size" section and summary.txt's warning line:
videmo.report.face_size)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from videmo import config as config_mod
from videmo import schema
from videmo.extract.pipeline import frame_table
from videmo.report.build import build_clip_table
from videmo.report.face_size import FACE_SIZE, FaceSizes, face_size_warning
from videmo.report.html import environment

from .conftest import REPO, SAMPLE_CLIPS, read_frames, write_video

HAPPY = np.array([0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1])


def frames(widths: dict[str, list[int]]) -> pd.DataFrame:
    recs = []
    for cid, ws in widths.items():
        for i, w in enumerate(ws):
            recs.append((cid, 5 * i, i / 6.0, 1, 0, 10, 10, w, w, np.nan, *map(float, HAPPY)))
    return frame_table(recs).to_pandas()


def test_face_px_is_the_median_width_of_each_clips_faces():
    table = frames({"far": [30, 34, 31, 90], "near": [120, 130, 125], "odd": [40, 41]})
    states = {"far": schema.DONE, "near": schema.DONE, "odd": schema.DONE,
              "failed": schema.FAILED}
    rc = config_mod.from_dict({}).report
    t = build_clip_table(table, states, rc, {}).set_index(schema.FILENAME)
    assert list(t.reset_index().columns) == list(schema.CLIP_TABLE_COLUMNS)
    assert t.loc["far", schema.FACE_PX] == 32  # median of 30 31 34 90, rounded
    assert t.loc["near", schema.FACE_PX] == 125
    assert t.loc["odd", schema.FACE_PX] == 40  # 40.5 rounds to even
    assert pd.isna(t.loc["failed", schema.FACE_PX])  # no faces, no size


def clips(sizes: dict[str, float | None]) -> pd.DataFrame:
    return pd.DataFrame({schema.FILENAME: list(sizes),
                         schema.FACE_PX: pd.array(list(sizes.values()), dtype="Int64")})


@pytest.mark.parametrize(("sizes", "expected"), [
    ({"a": 120, "b": 96, "c": None}, None),
    ({"a": 120, "b": 30, "c": 100}, "1 of 3 clips have a median face below"),
    ({"a": 20, "b": 30, "c": 100}, "the corpus's median face is 30 px wide (2 of 3 clips"),
    ({"a": None}, None),
])
def test_the_warning_names_the_threshold_and_the_benchmark(sizes, expected):
    line = face_size_warning(clips(sizes))
    if expected is None:
        assert line is None
        return
    assert line.startswith("small faces: ") and expected in line
    assert f"below {schema.FACE_PX_WARN} px" in line and "BENCHMARKS.md" in line
    assert "\n" not in line


def test_no_face_px_column_no_warning():
    """A clips table from before face_px (or a plug-in's) reads as unmeasured."""
    assert face_size_warning(pd.DataFrame({schema.FILENAME: ["a"]})) is None


class _Report:
    def __init__(self, table):
        self.clips = table


def test_the_section_shows_the_distribution_and_the_warning():
    report = _Report(clips({"a": 20, "b": 30, "c": 100, "d": None}))
    assert FACE_SIZE.available(report)
    html = str(FACE_SIZE.render(environment(), report, config_mod.from_dict({})))
    assert 'data-warning="face-size"' in html and "<code>a</code>" in html
    assert "<td>16-23 px</td><td>1</td>" in html and "<td>96-127 px</td><td>1</td>" in html
    sizes = FaceSizes.of(report.clips)
    assert sizes.measured == 3 and sizes.median == 30 and sizes.small == ["a", "b"]
    big = _Report(clips({"a": 200}))
    assert 'data-warning' not in str(FACE_SIZE.render(environment(), big,
                                                       config_mod.from_dict({})))
    assert not FACE_SIZE.available(_Report(clips({"a": None})))


def test_recommended_settings_find_a_downscaled_sample_clip_in_every_720p_frame(tmp_path, capsys):
    """A sample clip shrunk to a quarter (a face about 26 px wide) inside a 1280x720 frame, as a
    wide shot shows it: ``videmo run`` with the recommended settings finds the face in every
    sampled frame, writes its size to clips.csv and prints the small-face warning."""
    from videmo.cli import main

    frames = read_frames(SAMPLE_CLIPS[0])
    wide = []
    for i, frame in enumerate(frames):
        bg = np.full((720, 1280, 3), (90, 110, 120), np.uint8)
        small = cv2.resize(frame, (120, 90), interpolation=cv2.INTER_AREA)
        x, y = 200 + 4 * i, 420  # the speaker moves across the frame
        bg[y:y + 90, x:x + 120] = small
        wide.append(bg)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_video(corpus / "wide.mp4", wide, 30.0)
    data = yaml.safe_load((REPO / "configs" / "recommended.yaml").read_text())
    data["corpus"] = {"paths": [str(corpus)]}
    data["run"] = {"out": str(tmp_path / "run")}
    data["sampling"] = {"every_n": 5}
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(data))
    assert main(["run", str(job), "--no-progress"]) == 0
    df = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    assert len(df) >= len(frames) // 5
    assert (df[schema.N_FACES] >= 1).all(), df[[schema.FRAME_INDEX, schema.N_FACES]]
    assert df[schema.BOX_W].between(18, 40).all()
    clips_csv = pd.read_csv(tmp_path / "run" / "report" / "clips.csv")
    assert 18 <= clips_csv[schema.FACE_PX][0] < schema.FACE_PX_WARN
    out = capsys.readouterr().out
    assert sum(line.startswith("small faces: the corpus's median face is") for line in
               out.splitlines()) == 1
