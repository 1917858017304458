"""PNG figures that read without the code: titles, axis labels, units, counts."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from videmo import schema  # noqa: E402
from videmo.evaluate.metrics import PRED_CLASSES  # noqa: E402

CLASS_COLOURS = {schema.POSITIVE: "#2a9d8f", schema.NEGATIVE: "#e76f51",
                 schema.NEUTRAL: "#8d99ae", schema.NO_FACE: "#d9d9d9"}
EMOTION_COLOURS = dict(zip(schema.EMOTIONS, ["#d62828", "#6a994e", "#7b2cbf", "#f4a261",
                                             "#457b9d", "#e9c46a", "#8d99ae"], strict=True))


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # clip ids in scripts the default font lacks: boxes, fine
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def group_distribution(group: str, top7: pd.Series, labels3: pd.Series, n_clips: int,
                       path: Path) -> Path:
    """The share of face frames per top emotion and per class, for one group ("Biden")."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [7, 3]})
    n = max(1, len(top7))
    shares7 = [float((top7 == e).sum()) / n for e in schema.EMOTIONS]
    a.bar(schema.EMOTIONS, shares7, color=[EMOTION_COLOURS[e] for e in schema.EMOTIONS])
    a.set_ylabel("share of frames with a face")
    a.set_title("top emotion per frame")
    a.set_ylim(0, 1)
    shares3 = [float((labels3 == c).sum()) / n for c in schema.CLASSES]
    b.bar(schema.CLASSES, shares3, color=[CLASS_COLOURS[c] for c in schema.CLASSES])
    b.set_title("three classes")
    b.set_ylim(0, 1)
    for ax, vals in ((a, shares7), (b, shares3)):
        for i, v in enumerate(vals):
            ax.text(i, v + 0.01, f"{v:.0%}", ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"{group}'s emotional analysis ({n_clips} clips, {len(top7)} frames with a "
                 f"face)")
    return _save(fig, path)


def timeline(clip_id: str, rows: pd.DataFrame, predict: str, golden: str | None,
             path: Path, events: pd.DataFrame | None = None) -> Path:
    """The seven scores over time for one clip (first face row of each frame).

    ``events``: observer events of this clip (schema.ANNOTATION_COLUMNS), each a dashed
    vertical line at its media time, in its emotion's colour (other buttons black), named at the
    top; the x axis widens to show events after the last sampled frame."""
    fig, ax = plt.subplots(figsize=(10, 3.6))
    first = rows.sort_values([schema.FRAME_INDEX, schema.FACE_INDEX]).drop_duplicates(
        schema.FRAME_INDEX)
    t = first[schema.TIME_S].to_numpy()
    for e in schema.EMOTIONS:
        ax.plot(t, first[e].to_numpy(dtype=float), label=e, color=EMOTION_COLOURS[e],
                marker=".", linewidth=1.2)
    no_face = first[first[schema.FACE_INDEX] < 0][schema.TIME_S]
    if len(no_face):
        ax.scatter(no_face, np.zeros(len(no_face)) - 0.03, marker="|", color="black",
                   label="no face")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(-0.06, 1.02)
    if events is not None and len(events):
        _mark_events(ax, events)
    gold = f", golden {golden}" if golden else ""
    ax.set_title(f"{clip_id}: predicted {predict}{gold}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def blendshape_timeline(clip_id: str, mesh: pd.DataFrame, frames: pd.DataFrame, path: Path,
                        top: int = 6) -> Path:
    """The clip's ``top`` most moving blendshapes over time (largest standard deviation over
    the first face of each frame; ``_neutral`` left out), beside the emotion timeline."""
    first = mesh.sort_values([schema.FRAME_INDEX, schema.FACE_INDEX]).drop_duplicates(
        schema.FRAME_INDEX)
    times = frames.drop_duplicates(schema.FRAME_INDEX).set_index(schema.FRAME_INDEX)[
        schema.TIME_S]
    t = first[schema.FRAME_INDEX].map(times).to_numpy(dtype=float)
    names = [b for b in schema.BLENDSHAPES if b != "_neutral"]
    spread = first[names].astype(float).std().fillna(0).sort_values(ascending=False)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for i, name in enumerate(spread.index[:top]):
        ax.plot(t, first[name].to_numpy(dtype=float), label=name, marker=".", linewidth=1.2,
                color=plt.cm.tab10(i))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("blendshape score")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{clip_id}: the {min(top, len(names))} most moving blendshapes (face mesh)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def _mark_events(ax, events: pd.DataFrame) -> None:
    """Observer events as labelled dashed lines (one legend entry for all of them)."""
    ev = events.sort_values(schema.MEDIA_MS)
    for k, (_, e) in enumerate(ev.iterrows()):
        t = float(e[schema.MEDIA_MS]) / 1000.0
        colour = EMOTION_COLOURS.get(str(e[schema.BUTTON]), "black")
        ax.axvline(t, color=colour, linestyle="--", linewidth=1.0, alpha=0.9,
                   label="observer event" if k == 0 else None)
        ax.text(t, 1.0 - 0.09 * (k % 3), f" {e[schema.BUTTON]} ({e[schema.OBSERVER]})",
                color=colour, fontsize=7, va="top", ha="left", clip_on=True)
    left, right = ax.get_xlim()
    last = float(ev[schema.MEDIA_MS].max()) / 1000.0
    if last >= right:
        ax.set_xlim(left, last + 0.05 * max(last - left, 0.1))


def confusion(conf: dict[str, dict[str, int]], title: str, path: Path) -> Path:
    """Golden class x prediction; a non-class column (no face, failed, not extracted) only
    when some clip has it."""
    cols = [p for p in PRED_CLASSES if p in schema.CLASSES or any(conf[g][p] for g in conf)]
    m = np.array([[conf[g][p] for p in cols] for g in schema.CLASSES])
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2, 4))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(schema.CLASSES)), schema.CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("golden")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="clips")
    return _save(fig, path)


def comparison(table: pd.DataFrame, path: Path) -> Path:
    """Accuracy, macro-F1 and coverage per compared run (an unlabelled run has no bars for
    accuracy and macro-F1, and says n/a)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(table) + 3), 4))
    x = np.arange(len(table))
    metrics = [("accuracy", "#264653"), ("macro_f1", "#2a9d8f"), ("coverage", "#e9c46a")]
    width = 0.8 / len(metrics)
    for k, (name, colour) in enumerate(metrics):
        vals = table[name].astype(float).to_numpy()
        bars = ax.bar(x + (k - 1) * width, vals, width, label=name.replace("_", "-"),
                      color=colour)
        for bar, v in zip(bars, vals, strict=True):
            missing = bool(np.isnan(v))
            ax.text(bar.get_x() + bar.get_width() / 2, 0.01 if missing else v + 0.01,
                    "n/a" if missing else f"{v:.2f}", ha="center", fontsize=7)
    if "majority_baseline" in table:
        for i, v in enumerate(table["majority_baseline"].astype(float)):
            ax.hlines(v, i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                      label="majority baseline" if i == 0 else None)
    ax.set_xticks(x, table["run"])
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("per clip")
    ax.set_title("comparison of runs")
    ax.legend(fontsize=8, loc="upper center", ncol=4)
    return _save(fig, path)
