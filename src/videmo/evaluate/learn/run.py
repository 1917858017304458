"""``videmo learn RUN``: evaluate baselines, rules and learned classifiers on a labelled run's
clips, write the results, and save the best learned model (see the package doc for what is
written and why the evaluation is honest).

The steps are named functions: :func:`labelled_clips` (the run's frames, labels and groups),
:func:`_baseline_rows` (vote, mean, prior, rules), :func:`cv.cross_validate` (every registered
learner asked for), :func:`_results` (rates, intervals and McNemar p), :func:`_choose` and
:func:`cv.refit` (the deployed model), then the files."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from videmo import schema
from videmo.config import Config, LearnConfig, dump
from videmo.evaluate.assemble import clips_cut, segment_view
from videmo.evaluate.labels import golden_labels
from videmo.evaluate.learn import card, cv
from videmo.evaluate.learn.base import CLASSES, LearnError, get_learner
from videmo.evaluate.learn.clips import Clips, build_clips
from videmo.evaluate.learn.families import check_families, feature_sets, with_side_tables
from videmo.evaluate.learn.model_io import save_model
from videmo.evaluate.stats import (
    MIN_BOOTSTRAP_GROUPS,
    bootstrap_weights,
    interval,
    mcnemar_p,
    weighted_rates,
)
from videmo.evaluate.vote import clip_votes
from videmo.store import RunDir, write_csv_atomic, write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class LearnResult:
    out_dir: Path
    results: pd.DataFrame
    summary: str
    model_dir: Path | None


@dataclass
class Labelled:
    """The evaluated clips of a run: every labelled clip that was extracted (``ids``), their
    golden class and group, the clips with a face (``clips``) and where those sit in ``ids``."""

    frames: pd.DataFrame
    ids: list[str]
    group: dict[str, str]
    y: np.ndarray
    units: np.ndarray
    clips: Clips
    face_pos: np.ndarray
    not_done: list[str]
    label_lines: list[str]


def labelled_clips(run: RunDir, cfg: Config, families: set[str]) -> Labelled:
    """The run's frames (with the mesh columns ``families`` need), joined to its labels."""
    from videmo.evaluate.metrics import group_of

    rc = cfg.report
    frames = with_side_tables(run.frames(cfg.extract_hash()), run, cfg, families, str(run.path))
    done_ids = sorted(set(frames[schema.CLIP_ID].astype(str)))
    check_families(frames, families, str(run.path))
    labels_path = cfg.resolve(rc.labels)
    known = sorted(set(done_ids) | set(str(r[schema.CLIP_ID]) for _, r in
                                       run.manifest().iterrows()))
    golden, groups, issues = {}, {}, None
    if clips_cut(cfg):  # the clips are segments or windows of the recordings
        view, _ = segment_view(run, cfg, dict.fromkeys(done_ids, schema.DONE), frames)
        frames, golden, groups = view.frames, dict(view.golden), view.groups
        done_ids = sorted(set(frames[schema.CLIP_ID].astype(str)))
        known = sorted(view.states)
    if labels_path is None and not golden:
        raise LearnError("learning needs golden labels: set report.labels in the run's config "
                         "or pass --labels FILE (or a label column in corpus.segments)")
    if labels_path is not None:
        from_file, issues = golden_labels(Path(labels_path), known, rc)
        golden.update(from_file)
    ids = [c for c in done_ids if c in golden]
    if not ids:
        raise LearnError(f"no clip of {run.path} that was extracted has a label in "
                         f"{labels_path or cfg.corpus.segments}; check the labels file's clip "
                         f"column")
    group = {c: groups.get(c) or group_of(c, rc.group_pattern) for c in ids}
    clips = build_clips(frames[frames[schema.CLIP_ID].isin(ids)], ids, families, golden,
                        group)
    pos = {c: i for i, c in enumerate(ids)}
    return Labelled(frames, ids, group, np.asarray([golden[c] for c in ids], dtype=object),
                    np.asarray([group[c] for c in ids], dtype=object), clips,
                    np.asarray([pos[c] for c in clips.ids], dtype=int),
                    sorted(set(golden) - set(done_ids)), issues.lines() if issues else [])


def learn(run: RunDir, cfg: Config, *, out_dir: Path | None = None,
          progress: bool | None = None) -> LearnResult:
    """Evaluate baselines, rules and learned classifiers on a labelled run; save the best
    learned model. ``cfg`` is the run's config (with any report./learn. overrides)."""
    lc = cfg.learn
    out_dir = Path(out_dir or cfg.resolve(lc.out) or run.path / "learn")
    sets = feature_sets(lc)
    data = labelled_clips(run, cfg, {n for fs in sets for n in fs})
    clips = data.clips
    folds = cv.outer_folds(clips.groups, lc)
    if not folds.grouped:
        log.warning("learn: %s", folds.scheme)
    fold_of = np.full(len(data.ids), -1)
    for k, (_, test) in enumerate(folds.splits):
        fold_of[data.face_pos[test]] = k

    rows = _baseline_rows(data, cfg.report, folds)
    learners = [get_learner(name) for name in lc.classifiers]
    learned = cv.learned_rows(learners, sets, len(data.ids))
    for learner in learners:
        learner.setup(cfg)
    inputs = cv.Inputs(clips, lc.max_frames)
    show = sys.stderr.isatty() if progress is None else progress
    steps = len(folds.splits) * len(learners) + (1 if learners else 0)
    bar = tqdm(total=steps, unit="fit", desc="learn", disable=not show, dynamic_ncols=True)
    try:
        cv.cross_validate(learners, inputs, sets, folds, lc, learned, data.face_pos, bar)
        rows.extend(learned.values())
        table, stats = _results(rows, data.y, data.units, lc)
        chosen = _choose(table)
        model_dir = None
        if chosen is not None:
            bar.set_postfix_str(f"refit {chosen[0]} ({chosen[1]}) on all clips")
            model_dir = out_dir / "model"
            fitted = cv.refit(get_learner(chosen[0]), chosen[1], inputs, sets, lc)
            save_model(fitted, model_dir, clips, run, cfg)
            bar.update(1)
    finally:
        bar.close()
    summary = card.summary(run, out_dir, data.ids, data.y, data.units, clips, folds, table,
                           stats, chosen, data.not_done, data.label_lines, lc)
    _write(out_dir, table, data, fold_of, rows, cfg, summary, folds)
    if model_dir is not None:
        card.write_card(model_dir, run, cfg, data.ids, data.y, data.units, folds, table,
                        chosen, stats)
    return LearnResult(out_dir, table, summary, model_dir)


def _write(out_dir: Path, table: pd.DataFrame, data: Labelled, fold_of: np.ndarray,
           rows: list[cv.Row], cfg: Config, summary: str, folds: cv.Folds) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(table, out_dir / "results.csv")
    preds = pd.DataFrame({schema.CLIP_ID: data.ids, schema.GROUP: data.units,
                          schema.GOLDEN: data.y, schema.FOLD: fold_of,
                          **{f"{r.classifier}|{r.features}": r.pred for r in rows}})
    write_csv_atomic(preds, out_dir / "predictions.csv")
    write_text_atomic(out_dir / "learn_config.yaml", dump(cfg))
    write_text_atomic(out_dir / "summary.txt", summary + "\n")
    card.plot_results(table, out_dir / "results.png", folds.scheme)


def _baseline_rows(data: Labelled, rc, folds: cv.Folds) -> list[cv.Row]:
    """The majority vote, the mean and the rules on every evaluated clip (no training), and
    ``prior``: the commonest class of each training fold."""
    ids = data.ids
    mine = data.frames[data.frames[schema.CLIP_ID].isin(ids)]
    rows = []
    for name, kind in [("majority", schema.KIND_BASELINE), ("mean", schema.KIND_BASELINE),
                       ("expressive", schema.KIND_RULE), ("confident", schema.KIND_RULE),
                       ("peak", schema.KIND_RULE)]:
        v = clip_votes(mine, ids, rc.mapping, frame_rule=rc.frame_label, aggregate=name,
                       tie=rc.tie, interval_frames=rc.interval_frames, rules=rc.rules,
                       groups=data.group)
        rows.append(cv.Row(name, kind, "fer", v[schema.PREDICT].to_numpy(dtype=object)))
    prior = cv.Row("prior", schema.KIND_BASELINE, "none", cv.no_face(len(ids)))
    for train, test in folds.splits:
        counts = {c: int((data.clips.y[train] == c).sum()) for c in CLASSES}
        prior.pred[data.face_pos[test]] = max(CLASSES, key=lambda c: counts[c])  # ties: order
    rows.append(prior)
    return rows


def _results(rows: list[cv.Row], y: np.ndarray, units: np.ndarray, lc: LearnConfig
             ) -> tuple[pd.DataFrame, dict[str, Any]]:
    n_groups = len(set(units))
    unit = lc.bootstrap_unit
    if unit == "auto":
        unit = "groups" if n_groups >= MIN_BOOTSTRAP_GROUPS else "clips"
    w = bootstrap_weights(len(y), units if unit == "groups" else None, lc.bootstrap, lc.seed)
    ones = np.ones((1, len(y)))
    vote = rows[0].pred
    out = []
    for r in rows:
        acc, f1 = (float(v[0]) for v in weighted_rates(y, r.pred, ones))
        acc_b, f1_b = weighted_rates(y, r.pred, w)
        out.append({schema.CLASSIFIER: r.classifier, schema.KIND: r.kind,
                    schema.FEATURES: r.features, schema.ACCURACY: acc,
                    schema.ACCURACY + schema.CI_LOW: interval(acc_b)[0],
                    schema.ACCURACY + schema.CI_HIGH: interval(acc_b)[1],
                    schema.MACRO_F1: f1, schema.MACRO_F1 + schema.CI_LOW: interval(f1_b)[0],
                    schema.MACRO_F1 + schema.CI_HIGH: interval(f1_b)[1],
                    schema.N_CLIPS: len(y), schema.N_GROUPS: n_groups,
                    schema.P_VS_VOTE: np.nan if r is rows[0] else mcnemar_p(y, r.pred, vote)})
    table = pd.DataFrame(out, columns=list(schema.LEARN_RESULT_COLUMNS))
    rates = [c for c in table.columns if c not in (schema.P_VS_VOTE, schema.CLASSIFIER,
                                                   schema.KIND, schema.FEATURES)]
    table[rates] = table[rates].round(4)  # p-values keep their small values
    return table, {"unit": unit, "reps": lc.bootstrap,
                   "chosen": {f"{r.classifier}|{r.features}": r.chosen for r in rows
                              if r.chosen}}


def _choose(table: pd.DataFrame) -> tuple[str, str] | None:
    """The learned row with the best outer-CV accuracy (then macro-F1, then table order)."""
    learned = table[table[schema.KIND] == schema.KIND_LEARNED]
    if learned.empty:
        return None
    order = learned.assign(_i=-np.arange(len(learned))).sort_values(
        [schema.ACCURACY, schema.MACRO_F1, "_i"], ascending=False)
    r = order.iloc[0]
    return str(r[schema.CLASSIFIER]), str(r[schema.FEATURES])

