"""videmo.annotate.merge on hand-made tables: nearest frame, tolerance, ties, agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from videmo import schema as S
from videmo.annotate import merge
from videmo.extract.pipeline import SCORED_COLUMNS, frame_table


def frame_row(clip: str, index: int, t: float, emotion: str | None, face: int = 0,
              n_faces: int = 1, side: float = 50.0) -> dict:
    probs = dict.fromkeys(S.EMOTIONS, np.nan if emotion is None else 0.05)
    if emotion is not None:
        probs[emotion] = 0.7
    return {S.CLIP_ID: clip, S.FRAME_INDEX: index, S.TIME_S: t,
            S.N_FACES: 0 if emotion is None else n_faces,
            S.FACE_INDEX: -1 if emotion is None else face,
            S.BOX_X: 0.0, S.BOX_Y: 0.0, S.BOX_W: side, S.BOX_H: side, S.CONFIDENCE: np.nan,
            **probs}


@pytest.fixture
def frames() -> pd.DataFrame:
    rows = [
        # clip a: every 15th frame of 30 fps -> interval 0.5 s, default tolerance 0.25 s
        frame_row("a", 0, 0.0, "happy"),
        frame_row("a", 15, 0.5, "sad"),
        frame_row("a", 30, 1.0, None),  # no face
        frame_row("a", 45, 1.5, "angry"),
        # clip b: a single sampled frame, no interval
        frame_row("b", 0, 0.0, "happy"),
        # clip c: two faces in one frame (faces.select: all): the larger one counts
        frame_row("c", 0, 0.0, "happy", face=0, n_faces=2, side=20),
        frame_row("c", 0, 0.0, "fear", face=1, n_faces=2, side=80),
        frame_row("c", 10, 0.4, "fear", n_faces=1),
    ]
    return frame_table([tuple(r[c] for c in SCORED_COLUMNS) for r in rows]).to_pandas()


EVENTS = [  # observer, clip, button, media_ms -> (frame_index or None, predicted, agree)
    ("alice", "a", "happy", 0, 0, "happy", True),
    ("alice", "a", "sad", 240, 0, "happy", False),
    ("alice", "a", "sad", 260, 15, "sad", True),
    ("bob", "a", "happy", 250, 0, "happy", True),  # equidistant: the earlier frame
    ("bob", "a", "angry", 1000, 30, None, None),  # frame without a face
    ("bob", "a", "laughing", 500, 15, "sad", None),  # not an emotion: joined, not compared
    ("alice", "a", "happy", 2000, None, None, None),  # 0.5 s from the last frame > 0.25 s
    ("alice", "b", "happy", 0, None, None, None),  # one frame: no interval, no default match
    ("alice", "z", "happy", 100, None, None, None),  # clip not in the frame table
    ("bob", "c", "fear", 30, 0, "fear", True),
]


@pytest.fixture
def annotations() -> pd.DataFrame:
    return pd.DataFrame([e[:4] for e in EVENTS],
                        columns=[S.OBSERVER, S.CLIP_ID, S.BUTTON, S.MEDIA_MS])


def test_each_event_joins_the_nearest_frame_within_half_the_interval(annotations, frames):
    joined = merge.join_frames(annotations, frames)
    assert list(joined[S.CLIP_ID]) == [e[1] for e in EVENTS]  # order and count kept
    for (_obs, clip, button, ms, index, predicted, agree), (_, row) in zip(
            EVENTS, joined.iterrows(), strict=True):
        what = f"{clip} {button} at {ms} ms"
        assert row[S.MATCHED] == (index is not None), what
        assert (None if pd.isna(row[S.FRAME_INDEX]) else int(row[S.FRAME_INDEX])) == index, what
        assert (row[S.PREDICTED_EMOTION] if pd.notna(row[S.PREDICTED_EMOTION]) else None) \
            == predicted, what
        assert (bool(row[S.AGREE]) if pd.notna(row[S.AGREE]) else None) == agree, what
    a = joined[joined[S.CLIP_ID] == "a"]
    assert (a[S.TOLERANCE_S] == 0.25).all()
    assert a[S.FRAME_DT_S].tolist() == pytest.approx([0.0, -0.24, 0.24, -0.25, 0.0, 0.0, -0.5])
    assert joined.loc[joined[S.CLIP_ID] == "c", S.TOLERANCE_S].item() == pytest.approx(0.2)
    assert math.isnan(joined.loc[joined[S.CLIP_ID] == "b", S.TOLERANCE_S].item())
    assert math.isnan(joined.loc[joined[S.CLIP_ID] == "z", S.TOLERANCE_S].item())


def test_an_explicit_tolerance_replaces_the_default(annotations, frames):
    joined = merge.join_frames(annotations, frames, tolerance_s=0.6)
    assert joined[S.MATCHED].tolist() == [True] * 8 + [False, True]  # only clip z is missing
    strict = merge.join_frames(annotations, frames, tolerance_s=0.0)
    assert strict[S.MATCHED].tolist() == [ms in (0, 500, 1000) and clip != "z"
                                          for _, clip, _, ms, *_ in EVENTS]
    with pytest.raises(ValueError, match="tolerance_s"):
        merge.join_frames(annotations, frames, tolerance_s=-1)


def test_agreement_per_clip_overall_and_per_observer(annotations, frames):
    joined = merge.join_frames(annotations, frames)
    per_clip = merge.agreement(joined).set_index(S.CLIP_ID)
    assert list(per_clip.columns) == list(merge.AGREEMENT_COLUMNS)
    assert per_clip.loc["a", list(merge.AGREEMENT_COLUMNS[:4])].tolist() == [6, 5, 4, 3]
    assert per_clip.loc["a", merge.AGREEMENT] == pytest.approx(0.75)
    assert per_clip.loc["b", list(merge.AGREEMENT_COLUMNS[:4])].tolist() == [1, 0, 0, 0]
    assert math.isnan(per_clip.loc["b", merge.AGREEMENT])
    assert per_clip.loc["c", merge.AGREEMENT] == 1.0
    overall = merge.agreement(joined, by=None).iloc[0]
    assert overall[list(merge.AGREEMENT_COLUMNS[:4])].tolist() == [9, 6, 5, 4]
    assert overall[merge.AGREEMENT] == pytest.approx(0.8)
    by_obs = merge.agreement(joined, by=[S.OBSERVER]).set_index(S.OBSERVER)
    assert by_obs.loc["alice", merge.AGREEMENT] == pytest.approx(2 / 3)  # 0 and 260 of 3
    assert by_obs.loc["bob", merge.AGREEMENT] == 1.0


def test_confusion_counts_only_comparable_events(annotations, frames):
    table = merge.confusion(merge.join_frames(annotations, frames))
    assert list(table.index) == list(S.EMOTIONS) == list(table.columns)
    assert int(table.to_numpy().sum()) == 5
    assert table.loc["sad", "happy"] == 1 and table.loc["happy", "happy"] == 2


def test_frame_predictions_one_row_per_frame_largest_face(frames):
    pred = merge.frame_predictions(frames)
    assert len(pred) == 7
    c0 = pred[(pred[S.CLIP_ID] == "c") & (pred[S.FRAME_INDEX] == 0)]
    assert c0[S.PREDICTED_EMOTION].item() == "fear"
    assert pred[S.PREDICTED_EMOTION].isna().sum() == 1


def test_sampling_interval_is_the_median_gap(frames):
    extra = pd.concat([frames, pd.DataFrame([frame_row("a", 90, 3.0, "happy")])])
    intervals = merge.sampling_intervals(extra)
    assert intervals["a"] == 0.5  # gaps 0.5, 0.5, 0.5, 1.5
    assert math.isnan(intervals["b"])


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop(columns=[S.MEDIA_MS]), "missing column"),
    (lambda df: df.assign(**{S.MEDIA_MS: [-5] + [0] * (len(df) - 1)}), "row 1: media_ms -5"),
    (lambda df: df.assign(**{S.MEDIA_MS: ["x"] + [0] * (len(df) - 1)}), "row 1: media_ms x is not"),
])
def test_bad_annotations_are_named(annotations, frames, change, message):
    with pytest.raises(merge.AnnotationsError, match=message):
        merge.join_frames(change(annotations), frames)


def test_read_annotations_types_the_columns(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_text(",".join(S.ANNOTATION_COLUMNS) + "\n"
                    "Ann O'Brien,2019/biden_58.0,happy,1234,2026-01-01T00:00:00.000Z,"
                    "2026-01-01T00:00:00.250Z\n")
    df = merge.read_annotations(path)
    assert df[S.MEDIA_MS].dtype == "int64" and df[S.MEDIA_MS].item() == 1234
    assert df[S.OBSERVER].item() == "Ann O'Brien"
    assert (df[S.RECEIVED_AT] - df[S.WALL_TIME]).item() == pd.Timedelta(milliseconds=250)
    with pytest.raises(merge.AnnotationsError, match="no annotations file"):
        merge.read_annotations(tmp_path / "missing.csv")
