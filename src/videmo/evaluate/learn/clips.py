"""The clips the learners see, and the two inputs made of them: pooled statistics per clip
(:func:`pooled`) and the frame sequence (:func:`sequence`).

Pooled statistics (:data:`STATS`: mean, std, max, 10th / 50th / 90th percentile, slope over
time, time of peak as a fraction of the clip) are computed per column of each feature family
over the clip's face rows in frame order."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from videmo import schema
from videmo.evaluate.learn.families import FAMILIES
from videmo.evaluate.vote import face_rows

STATS: tuple[str, ...] = ("mean", "std", "max", "q10", "q50", "q90", "slope", "t_peak")


@dataclass
class Clips:
    """The clips the learners see: those with at least one face row, sorted by id.

    ``seqs[family][i]`` holds clip i's face rows (in frame order) x the family's features;
    ``times[i]`` each row's time as a fraction of the clip's sampled span (0 for one frame)."""

    ids: list[str]
    groups: np.ndarray
    y: np.ndarray  # golden class per clip ("" when unlabelled: applying a model)
    times: list[np.ndarray]
    seqs: dict[str, list[np.ndarray]]
    names: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def build_clips(frames: pd.DataFrame, clip_ids: list[str], families: set[str],
                golden: dict[str, str] | None = None,
                groups: dict[str, str] | None = None) -> Clips:
    rows = face_rows(frames)
    cid_all = frames[schema.CLIP_ID].astype(str)
    wanted = set(clip_ids)
    rows = rows[rows[schema.CLIP_ID].astype(str).isin(wanted)]
    rows = rows.sort_values([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX],
                            kind="stable")
    t_all = frames[schema.TIME_S].astype(float)
    t0 = t_all.groupby(cid_all).min()
    t1 = t_all.groupby(cid_all).max()
    cid = rows[schema.CLIP_ID].astype(str).to_numpy()
    ids, starts = np.unique(cid, return_index=True)
    ends = np.append(starts[1:], len(cid))
    t = rows[schema.TIME_S].astype(float).to_numpy()
    values = {n: FAMILIES[n].values(rows) for n in sorted(families)}
    times, seqs = [], {n: [] for n in values}
    for c, a, b in zip(ids, starts, ends, strict=True):
        span = float(t1[c] - t0[c])
        times.append((t[a:b] - float(t0[c])) / span if span > 0 else np.zeros(b - a))
        for n, (v, _) in values.items():
            seqs[n].append(v[a:b])
    ids_l = [str(c) for c in ids]
    golden = golden or {}
    groups = groups or {}
    return Clips(ids_l, np.asarray([groups.get(c, c) for c in ids_l], dtype=object),
                 np.asarray([golden.get(c, "") for c in ids_l], dtype=object), times, seqs,
                 {n: names for n, (_, names) in values.items()})


def pool(seq: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The :data:`STATS` of each column of one clip's rows, stat-major. A NaN value (a face
    the family could not describe) is replaced by its column's mean in the clip first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        col_mean = np.nanmean(seq, axis=0)
    seq = np.where(np.isnan(seq), col_mean, seq)
    q = np.quantile(seq, [0.1, 0.5, 0.9], axis=0)
    tc = t - t.mean()
    var = float(tc @ tc)
    slope = tc @ (seq - col_mean) / var if var > 0 else np.zeros(seq.shape[1])
    peak = t[np.argmax(np.nan_to_num(seq, nan=-np.inf), axis=0)]
    return np.concatenate([col_mean, seq.std(axis=0), seq.max(axis=0), q[0], q[1], q[2],
                           slope, peak])


def pooled(clips: Clips, fs: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """One row per clip: the pooled statistics of every family of ``fs``, and their names."""
    blocks, names = [], []
    for n in fs:
        blocks.append(np.stack([pool(s, t) for s, t in zip(clips.seqs[n], clips.times,
                                                             strict=True)])
                      if len(clips) else np.zeros((0, len(STATS) * len(clips.names[n]))))
        names.extend(f"{c}_{s}" for s in STATS for c in clips.names[n])
    return np.hstack(blocks), names


def sequence(clips: Clips, i: int, fs: tuple[str, ...], max_frames: int) -> np.ndarray:
    """Clip i's rows x (family values..., time fraction), subsampled evenly to max_frames."""
    x = np.hstack([clips.seqs[n][i] for n in fs] + [clips.times[i][:, None]])
    if len(x) > max_frames:
        x = x[np.round(np.linspace(0, len(x) - 1, max_frames)).astype(int)]
    return x

