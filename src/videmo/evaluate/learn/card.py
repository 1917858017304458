"""What ``videmo learn`` writes for people: summary.txt, the model card beside the deployed
model, and results.png (accuracy with its interval per row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from videmo import schema
from videmo.evaluate.learn.base import CLASSES, get_learner
from videmo.evaluate.learn.cv import Folds
from videmo.evaluate.learn.families import FAMILIES, LANDMARK_SUBSET
from videmo.evaluate.stats import MIN_BOOTSTRAP_GROUPS
from videmo.store import write_text_atomic

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.store import RunDir


def _fmt_row(r: pd.Series) -> str:
    p = r[schema.P_VS_VOTE]
    return (f"  {r[schema.CLASSIFIER]:<11}{r[schema.KIND]:<9}{r[schema.FEATURES]:<17}"
            f"{r[schema.ACCURACY]:6.1%} [{r[schema.ACCURACY + schema.CI_LOW]:6.1%}, "
            f"{r[schema.ACCURACY + schema.CI_HIGH]:6.1%}]  "
            f"{r[schema.MACRO_F1]:.3f} [{r[schema.MACRO_F1 + schema.CI_LOW]:.3f}, "
            f"{r[schema.MACRO_F1 + schema.CI_HIGH]:.3f}]  "
            f"{'-' if pd.isna(p) else format(p, '.3g')}")


def _balance_line(y: np.ndarray) -> str:
    n = len(y)
    parts = [f"{c} {int((y == c).sum())} ({(y == c).mean():.0%})" for c in CLASSES]
    top = max(CLASSES, key=lambda c: (y == c).sum())
    return (f"class balance: {', '.join(parts)}; always '{top}' would be right on "
            f"{(y == top).sum() / n:.1%}")


def summary(run, out_dir, ids, y, units, clips, folds, table, stats, chosen, not_done,
             label_lines, lc) -> str:
    lines = [f"learn: {run.path} -> {out_dir}"]
    if not folds.grouped:
        lines.append("!" * 78)
        lines.append(f"!! {folds.scheme}")
        lines.append("!" * 78)
    lines.append(f"clips: {len(ids)} labelled and extracted ({len(clips)} with a face), "
                 f"{len(set(units))} group(s) by report.group_pattern")
    lines.append(_balance_line(y))
    lines.append(f"folds: {folds.scheme}; hyper-parameters"
                 f"{' and feature set' if len(lc.features) > 1 else ''} chosen by an inner "
                 f"CV on each training fold (learn.inner_folds = {lc.inner_folds}); seed "
                 f"{lc.seed}")
    why = "persons: clips of one person are not independent" if stats["unit"] == "groups" \
        else (f"fewer than {MIN_BOOTSTRAP_GROUPS} groups: too few for a group bootstrap"
              if lc.bootstrap_unit == "auto" else "learn.bootstrap_unit: clips")
    lines.append(f"95% intervals: percentile bootstrap, {stats['reps']} resamples of "
                 f"{stats['unit']} ({why}); p_vs_vote: exact McNemar test against the "
                 f"majority vote")
    lines.append(f"  {'classifier':<11}{'kind':<9}{'features':<17}{'accuracy [95% CI]':<26}"
                 f"{'macro-F1 [95% CI]':<23}p_vs_vote")
    lines.extend(_fmt_row(r) for _, r in table.iterrows())
    if chosen is not None:
        r = table[(table[schema.CLASSIFIER] == chosen[0])
                  & (table[schema.FEATURES] == chosen[1])].iloc[0]
        vote = table.iloc[0]
        lines.append(f"chosen model: {chosen[0]} ({chosen[1]}), refitted on all {len(clips)} "
                     f"clips -> {out_dir / 'model'} (the best of the learned rows: its "
                     f"accuracy is optimistic by that choice)")
        if r[schema.ACCURACY] <= vote[schema.ACCURACY]:
            lines.append("  it does not beat the majority vote here")
    for key, picks in stats["chosen"].items():
        lines.append(f"selected per fold, {key}: " + "; ".join(dict.fromkeys(picks)))
    if not_done:
        lines.append(f"left out: {len(not_done)} labelled clips not extracted (failed or not "
                     f"done): {', '.join(not_done[:10])}{' ...' if len(not_done) > 10 else ''}")
    lines.extend("labels: " + s for s in label_lines)
    return "\n".join(lines)


def write_card(model_dir: Path, run: RunDir, cfg: Config, ids, y, units, folds: Folds,
               table: pd.DataFrame, chosen: tuple[str, str], stats: dict[str, Any]) -> None:
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    lc = cfg.learn
    r = table[(table[schema.CLASSIFIER] == chosen[0])
              & (table[schema.FEATURES] == chosen[1])].iloc[0]
    files = ", ".join(["model.json", *meta["files"]])
    learned_rows = int((table[schema.KIND] == schema.KIND_LEARNED).sum())
    inputs = get_learner(chosen[0]).describes
    lines = [
        f"# Model card: videmo clip classifier `{chosen[0]}` ({chosen[1]})", "",
        f"Made by `videmo learn` on {meta['created']} with videmo {meta['videmo']}, commit "
        f"{meta['commit']}.", "",
        "## What it does", "",
        "Labels a clip positive / negative / neutral from the per-frame table of a videmo run "
        f"(feature families: {', '.join(meta['features'])}).",
        f"Apply it with `videmo report RUN --classifier {model_dir}` (or `report.classifier`).",
        f"Files: {files}; no pickle: the sha256 of every other file is in model.json and is "
        "checked before loading. Load only model folders you made yourself.", "",
        "## Data", "",
        f"Run `{run.path.resolve()}` (extract hash {cfg.extract_hash()}; detector "
        f"{cfg.faces.detector}; sampling every_n {cfg.sampling.every_n}, fps "
        f"{cfg.sampling.fps}).",
        *([f"Face mesh (features: [emotions, mesh]): mesh.min_presence "
           f"{cfg.mesh.min_presence}, mesh hash {cfg.table_hash('mesh')}"
           + (f"; landmarks: x, y, z of {len(LANDMARK_SUBSET)} pose-normalised points "
              f"(videmo.evaluate.learn.families.LANDMARK_SUBSET)" if "landmarks" in meta["features"]
              else "") + "."]
          if any(FAMILIES[n].table == "mesh" for n in meta["features"]) else []),
        f"{len(ids)} labelled clips of {len(set(units))} group(s) by report.group_pattern "
        f"`{cfg.report.group_pattern}`.",
        f"{_balance_line(y)[0].upper()}{_balance_line(y)[1:]}.", "",
        "## Training", "",
        f"{chosen[0]} on {inputs}; settings {json.dumps(meta['params'])}, chosen by an inner "
        f"CV over all clips (learn.inner_folds {lc.inner_folds}), then refitted on all "
        f"{meta['trained_on']['clips']} clips with a face. Seed {lc.seed}.", "",
        "## Evaluation (outer cross-validation, out-of-fold predictions)", "",
        f"Folds: {folds.scheme}.",
        f"Accuracy {r[schema.ACCURACY]:.1%} (95% CI {r[schema.ACCURACY + schema.CI_LOW]:.1%} to "
        f"{r[schema.ACCURACY + schema.CI_HIGH]:.1%}), macro-F1 {r[schema.MACRO_F1]:.3f} "
        f"({r[schema.MACRO_F1 + schema.CI_LOW]:.3f} to {r[schema.MACRO_F1 + schema.CI_HIGH]:.3f}); "
        f"percentile bootstrap, {stats['reps']} resamples of {stats['unit']}.",
        f"Majority vote on the same clips: {table.iloc[0][schema.ACCURACY]:.1%}; exact McNemar "
        f"p = {r[schema.P_VS_VOTE]:.3g}.",
        f"This model is the best of {learned_rows} learned rows by the same outer CV, so its "
        "number is optimistic by that choice; every row is in results.csv beside this folder.",
        "", "## Limits", "",
        "The numbers hold for clips like these (the same kind of persons and footage, the same "
        "extract settings); applying the model to a run with other extract settings logs a "
        "warning, and to its own training clips too (their accuracy is no estimate).",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(model_dir / "model-card.md", text)


def plot_results(table: pd.DataFrame, path: Path, scheme: str) -> Path:
    """Accuracy with its 95% interval per row, coloured by kind; the vote as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = {schema.KIND_BASELINE: "#8d99ae", schema.KIND_RULE: "#e9c46a",
               schema.KIND_LEARNED: "#2a9d8f"}
    n = len(table)
    fig, ax = plt.subplots(figsize=(7, 1.0 + 0.35 * n))
    ypos = np.arange(n)[::-1]
    acc = table[schema.ACCURACY].to_numpy(float)
    lo = acc - table[schema.ACCURACY + schema.CI_LOW].to_numpy(float)
    hi = table[schema.ACCURACY + schema.CI_HIGH].to_numpy(float) - acc
    ax.barh(ypos, acc, color=[colours[k] for k in table[schema.KIND]],
            xerr=np.vstack([lo, hi]), capsize=3)
    labels = [f"{c} ({f})" for c, f in zip(table[schema.CLASSIFIER], table[schema.FEATURES],
                                            strict=True)]
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.axvline(acc[0], color="black", linestyle="dashed", linewidth=1, label="majority vote")
    for k, c in colours.items():
        ax.barh([np.nan], [np.nan], color=c, label=k)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"accuracy per clip (95% bootstrap CI), {int(table[schema.N_CLIPS].iloc[0])} "
                  f"clips")
    ax.set_title(scheme if len(scheme) < 70 else scheme[:67] + "...", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
