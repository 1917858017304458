"""The report stage: per-frame table -> per-clip CSV, metrics, figures. Never touches a video.

Every clip of the corpus is in the report, done or not: a clip that failed or was never
extracted is a row of clips.csv (its ``status``) and counts as wrong in accuracy and F1, so the
numbers of an unfinished run are honest, and metrics.json says ``complete: false``.

Outputs (RUN/report/ unless ``report.out``): ``clips.csv`` (schema.CLIP_TABLE_COLUMNS, the
study's columns first: filename, predict, golden, pos, neg, neut; classes spelled Pos, Neg,
Neut), ``groups.csv``, ``metrics.json``, ``summary.txt``, ``report_config.yaml`` and
``figures/``, ``report.html`` (the same report as one self-contained page, see
:mod:`videmo.report.html`) and, when the run has observer events (RUN/annotations.csv),
``annotations_merged.csv`` (see :mod:`videmo.report.annotations`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from videmo import schema
from videmo.config import Config, ReportConfig, dump
from videmo.evaluate.assemble import RECORDING, clips_cut, segment_view
from videmo.evaluate.labels import LabelsError, golden_labels
from videmo.evaluate.metrics import PRED_CLASSES, evaluate, fmt, group_of
from videmo.evaluate.vote import (
    balance,
    clip_votes,
    face_rows,
    frame_labels,
    main_track_rows,
    top_emotions,
)
from videmo.extract.corpus import CorpusError, discover
from videmo.report import figures
from videmo.report.annotations import observer_events
from videmo.report.html import write_report_html
from videmo.report.model import (
    ORACLE_NOTE,
    Report,
    ReportMetrics,
    short,
    unfinished_message,
)
from videmo.report.segmented import recording_timelines, with_spans
from videmo.store import RunDir, is_truncated, safe_name, write_csv_atomic, write_text_atomic
from videmo.store.integrity import REPORT_BUILT, built_record

log = logging.getLogger(__name__)


def balance_label(balance_rule: str) -> str:
    """The ``balance`` column's value: the rule, golden named as the oracle it is."""
    return schema.BALANCE_ORACLE if balance_rule == "golden" else balance_rule


@dataclass
class ClipStates:
    """Every clip the report counts, with its state (schema.DONE / FAILED / NOT_EXTRACTED)."""
    states: dict[str, str]
    manifest: pd.DataFrame  # the run's records
    corpus_listed: bool  # False: the corpus could not be listed, only records are known

    def ids(self, state: str) -> list[str]:
        return [c for c, s in sorted(self.states.items()) if s == state]


def clip_states(run: RunDir, cfg: Config) -> ClipStates:
    """The corpus's clips (discovered from ``cfg``) united with the clips the run recorded.

    A clip is done with a done record of the current extract hash whose rows exist, made from
    its file as it is now (a file changed since is not extracted); failed with
    a failed record of that hash; otherwise (no record, pending, interrupted, another config)
    not extracted. When the corpus cannot be listed (moved, unmounted), one warning, and the
    records are all the report knows.
    """
    config_hash = cfg.extract_hash()
    manifest = run.manifest()
    states: dict[str, str] = {}
    corpus_listed = True
    clips = {}
    try:
        clips = {c.clip_id: c for c in discover(cfg)}
        states.update(dict.fromkeys(clips, schema.NOT_EXTRACTED))
    except (CorpusError, OSError) as e:
        corpus_listed = False
        log.warning("cannot list the corpus (%s): the report counts only the %d clips the run "
                    "recorded", e, len(manifest))
    for _, rec in manifest.iterrows():
        cid = str(rec[schema.CLIP_ID])
        current = rec[schema.CONFIG_HASH] == config_hash
        if run.why_not_done(rec.to_dict(), config_hash, clips.get(cid), cfg) is None:
            states[cid] = schema.DONE
        elif current and rec[schema.STATUS] == schema.FAILED:
            states[cid] = schema.FAILED
        else:
            states[cid] = schema.NOT_EXTRACTED
    return ClipStates(states, manifest, corpus_listed)


def build_clip_table(frames: pd.DataFrame, states: dict[str, str], rc: ReportConfig,
                     golden: dict[str, str],
                     truncated: dict[str, bool] | None = None,
                     classifier=None, groups: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per clip of ``states``; a clip that is not done gets its state as predict.
    ``classifier`` (a :class:`videmo.evaluate.learn.model_io.ClipClassifier`) labels every
    clip with a face. ``groups``: each clip's group (segments: their person or recording);
    else ``report.group_pattern`` on the clip id."""
    clip_ids = sorted(states)
    groups = groups or {c: group_of(c, rc.group_pattern) for c in clip_ids}
    done_ids = [c for c in clip_ids if states[c] == schema.DONE]
    frames = frames[frames[schema.CLIP_ID].isin(done_ids)]
    voters = main_track_rows(frames) if rc.track == "main" else frames
    votes = clip_votes(voters, clip_ids, rc.mapping, frame_rule=rc.frame_label,
                       aggregate=rc.aggregate, tie=rc.tie, interval_frames=rc.interval_frames,
                       rules=rc.rules,
                       groups=groups)
    if classifier is not None:
        votes = classifier.relabel(votes, frames)
    votes[schema.PREDICT_UNBALANCED] = votes[schema.PREDICT]
    if rc.balance != "none":  # clips without face rows (not done ones too) keep their vote
        votes[schema.PREDICT] = balance(votes, _balance_shares(rc, golden))
    cid = votes[schema.CLIP_ID]
    state = cid.map(states)
    done = state == schema.DONE
    for col in (schema.PREDICT, schema.PREDICT_UNBALANCED):
        votes[col] = votes[col].where(done, state)
    frame_keys = [schema.CLIP_ID, schema.FRAME_INDEX]
    sampled = frames.drop_duplicates(frame_keys).groupby(schema.CLIP_ID).size()
    with_face = frames[frames[schema.FACE_INDEX] >= 0].drop_duplicates(frame_keys).groupby(
        schema.CLIP_ID).size()
    table = votes.rename(columns={schema.CLIP_ID: schema.FILENAME})
    table[schema.GOLDEN] = cid.map(golden)
    table[schema.STATUS] = state
    table[schema.FRAMES_SAMPLED] = cid.map(sampled).fillna(0).astype(int)
    table[schema.FRAMES_WITH_FACE] = cid.map(with_face).fillna(0).astype(int)
    used = voters[voters[schema.FACE_INDEX] >= 0]
    face_px = used.groupby(schema.CLIP_ID)[schema.BOX_W].median().round().astype("Int64")
    table[schema.FACE_PX] = cid.map(face_px).astype("Int64")
    table[schema.CORRECT] = [(golden[c] == p) if c in golden else pd.NA
                             for c, p in zip(cid, votes[schema.PREDICT], strict=True)]
    truncated = truncated or {}
    table[schema.TRUNCATED] = pd.array(
        [truncated.get(c, False) if states[c] == schema.DONE else pd.NA for c in cid],
        dtype="boolean")
    table[list(schema.MEAN_EMOTIONS)] = table[list(schema.MEAN_EMOTIONS)].round(4)
    table[schema.GROUP] = cid.map(groups)
    table[schema.BALANCE] = balance_label(rc.balance)
    return table[list(schema.CLIP_TABLE_COLUMNS)]


def _balance_shares(rc: ReportConfig, golden: dict[str, str]) -> dict[str, float]:
    if rc.balance == "uniform":
        return dict.fromkeys(schema.CLASSES, 1.0)
    if rc.balance == "shares":
        return {c: float(rc.balance_shares.get(c, 0.0)) for c in schema.CLASSES}
    counts = {c: sum(1 for g in golden.values() if g == c) for c in schema.CLASSES}
    if not any(counts.values()):
        raise LabelsError("report.balance: golden takes the class shares from the golden "
                          "labels, but no label of report.labels matches a clip of the run; "
                          "check the labels file or choose another report.balance")
    return {c: float(v) for c, v in counts.items()}


def _evaluate(table: pd.DataFrame) -> dict[str, Any]:
    golden = [None if pd.isna(g) else g for g in table[schema.GOLDEN]]
    return evaluate(list(table[schema.PREDICT]), golden)


def _cell(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def group_table(table: pd.DataFrame, rc: ReportConfig) -> tuple[pd.DataFrame,
                                                                 dict[str, dict[str, Any]]]:
    """groups.csv (schema.GROUP_METRIC_COLUMNS, predicted counts) and each group's metrics."""
    rows, metrics = [], {}
    for g, part in table.groupby(schema.GROUP, sort=True):
        m = _evaluate(part)
        metrics[str(g)] = m
        rows.append({schema.GROUP: g, **{k: _cell(m[k]) for k in schema.GROUP_METRIC_COLUMNS},
                     **{schema.PREDICTED_PREFIX + p: m["predicted_counts"][p]
                        for p in PRED_CLASSES},
                     schema.BALANCE: balance_label(rc.balance)})
    columns = [schema.GROUP, *schema.GROUP_METRIC_COLUMNS,
               *(schema.PREDICTED_PREFIX + p for p in PRED_CLASSES), schema.BALANCE]
    return pd.DataFrame(rows, columns=columns), metrics


def build_report(run: RunDir, cfg: Config, out_dir: Path | None = None,
                 labels_path: Path | None = None, frames: pd.DataFrame | None = None) -> Report:
    """Build and write the report over every clip of the corpus (see :func:`clip_states`).

    ``frames`` is the run's per-frame table when the caller already holds it (``videmo run``
    after extract); otherwise it is read from the run. ``labels_path`` overrides
    ``report.labels`` (the CLI passes ``--labels`` as that key instead, so that config
    validation sees it)."""
    rc = cfg.report
    out_dir = Path(out_dir or cfg.resolve(rc.out) or run.path / "report")
    if frames is None:
        frames = run.frames(cfg.extract_hash())
    cs = clip_states(run, cfg)
    manifest = cs.manifest
    recordings_done = set(cs.ids(schema.DONE))
    done = manifest[manifest[schema.CLIP_ID].astype(str).isin(recordings_done)]
    truncated = {str(r[schema.CLIP_ID]): is_truncated(r.to_dict())
                 for _, r in done.iterrows()}
    classifier = None
    if rc.classifier is not None:
        from videmo.evaluate.learn.model_io import load_classifier

        classifier = load_classifier(cfg.resolve(rc.classifier), cfg.extract_hash())
    scored = frames if classifier is None else classifier.with_features(frames, run, cfg)
    states, clip_groups, golden, view, segment_issues = cs.states, None, {}, None, None
    reasons = {str(r[schema.CLIP_ID]): str(r[schema.REASON]) for _, r in manifest.iterrows()}
    if clips_cut(cfg):  # the clips are segments or windows of the recordings
        view, segment_issues = segment_view(run, cfg, cs.states, scored)
        scored, states, clip_groups = view.frames, view.states, view.groups
        golden = dict(view.golden)
        recording_of = view.spans[RECORDING].to_dict()
        truncated = {s: truncated[r] for s, r in recording_of.items() if r in truncated}
        reasons = {s: reasons.get(r, "") for s, r in recording_of.items()}
    clip_ids = sorted(states)
    done_ids = {c for c, s in states.items() if s == schema.DONE}
    labels_path = labels_path or cfg.resolve(rc.labels)
    issues = None
    if labels_path is not None:
        from_file, issues = golden_labels(Path(labels_path), clip_ids, rc)
        golden.update(from_file)
        for line in issues.lines():
            log.warning("labels %s: %s", labels_path, line)
    table = build_clip_table(scored, states, rc, golden, truncated, classifier, clip_groups)
    if view is not None:
        table = with_spans(table, view)
    groups, group_metrics = group_table(table, rc)
    overall = _evaluate(table)
    failed_ids = {c for c, s in states.items() if s == schema.FAILED}
    seconds = pd.to_numeric(done[schema.SECONDS], errors="coerce")
    truncated_ids = sorted(c for c, t in truncated.items() if t)
    observers = observer_events(run.path, frames)
    metrics = ReportMetrics(
        overall=overall,
        groups=group_metrics,
        complete=len(done_ids) == len(clip_ids),
        corpus_listed=cs.corpus_listed,
        failed_clips={c: reasons.get(c, "") for c in sorted(failed_ids)},
        not_extracted_clips=sorted(c for c, s in states.items() if s == schema.NOT_EXTRACTED),
        truncated=len(truncated_ids),
        truncated_clips=truncated_ids,
        balance=rc.balance,
        balance_oracle=rc.balance == "golden",
        balance_note=ORACLE_NOTE if rc.balance == "golden" else None,
        seconds_per_clip=float(seconds.mean()) if seconds.notna().any() else None,
        frames=int(len(frames)),
        labels_file=str(labels_path) if labels_path else None,
        label_issues=issues.to_dict() if issues else None,
        detector=cfg.faces.detector,
        extract_hash=cfg.extract_hash(),
        report_options=cfg.to_dict()["report"],
        classifier=None if classifier is None else {
            "path": str(classifier.path), "classifier": classifier.name,
            "features": "+".join(classifier.features)},
        observer_agreement=observers.metrics() if observers else None,
        segments=None if view is None else {
            "source": "windows" if cfg.corpus.window_s is not None else "segments",
            "clips": len(states), "recordings": int(view.spans[RECORDING].nunique()),
            "bad_rows": segment_issues.lines(limit=50) if segment_issues else [],
            "unsampled": [s.segment_id for s in view.unsampled]},
    )
    if not metrics.complete:
        log.warning("%s", unfinished_message(overall))
    report = Report(out_dir, table, groups, metrics, issues, observers, run.read_meta(),
                    run.path)
    write_report(report, cfg, frames if view is None else view.frames)
    return report


def write_report(report: Report, cfg: Config, frames: pd.DataFrame) -> None:
    """Write the report's files. What it was built from (built_from.json, see
    :func:`videmo.store.integrity.built_record`) goes first out and last in, so a report cut
    short by a kill has none and ``videmo verify`` names it; figures of an earlier build that
    this one did not draw are removed."""
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_BUILT).unlink(missing_ok=True)
    write_csv_atomic(report.study_table(), out / "clips.csv")
    write_csv_atomic(report.groups, out / "groups.csv")
    write_text_atomic(out / "metrics.json",
                      json.dumps(report.metrics.to_dict(), indent=2, default=str) + "\n")
    write_text_atomic(out / "report_config.yaml", dump(cfg))
    write_text_atomic(out / "summary.txt", report.summary() + "\n")
    if report.observers is not None and report.observers.error is None:
        write_csv_atomic(report.observers.joined, out / "annotations_merged.csv")
    if cfg.report.figures:
        write_figures(report, cfg, frames)
    drop_old_figures(out / "figures", report.figures.paths())
    write_report_html(report, cfg)
    if report.run_dir is not None:
        write_text_atomic(out / REPORT_BUILT, json.dumps(
            built_record(RunDir(report.run_dir), cfg), indent=1) + "\n")


def drop_old_figures(fig_dir: Path, drawn: set[Path]) -> None:
    """Remove the PNGs under ``fig_dir`` that this build did not draw (an earlier build's, e.g.
    the face mesh's of a run whose mesh is now off)."""
    if not fig_dir.is_dir():
        return
    for png in fig_dir.rglob("*.png"):
        if png not in drawn:
            png.unlink(missing_ok=True)


def _mesh_table(run_dir: Path | None, cfg: Config) -> pd.DataFrame | None:
    """The run's mesh table without its landmarks, read through the run's one reader of side
    tables (its parts made under this config's mesh hash), or None (features without mesh)."""
    mesh_hash = cfg.table_hash("mesh")
    if run_dir is None or mesh_hash is None:
        return None
    table = RunDir(run_dir).side_table("mesh", cfg.extract_hash(), mesh_hash)
    if table is None:
        return None
    return table.drop_columns([schema.LANDMARKS]).to_pandas()


def write_figures(report: Report, cfg: Config, frames: pd.DataFrame) -> None:
    rc = cfg.report
    fig_dir = report.out_dir / "figures"
    table = report.clips.set_index(schema.FILENAME)
    rows = face_rows(frames)
    top7 = top_emotions(frames)
    labels3 = frame_labels(frames, rc.mapping, rc.frame_label)
    groups = rows[schema.CLIP_ID].map(table[schema.GROUP])
    for g in sorted(table[schema.GROUP].unique())[:30]:
        mask = groups == g
        n_clips = int((table[schema.GROUP] == g).sum())
        report.figures.groups[str(g)] = figures.group_distribution(
            str(g), top7[mask], labels3[mask], n_clips, fig_dir / f"group_{safe_name(str(g))}.png")
    if report.metrics.overall["labelled"]:
        m = report.metrics.overall
        oracle = "\nbalance: golden (an oracle: shares from the test labels)" \
            if report.metrics.balance_oracle else ""
        report.figures.confusion = figures.confusion(
            m["confusion"], f"accuracy {fmt(m['accuracy'], '.1%')}, macro-F1 "
                            f"{fmt(m['macro_f1'], '.2f')} ({m['labelled']} labelled clips){oracle}",
            fig_dir / "confusion.png")
    if schema.FILENAME in report.clips and RECORDING in report.clips:
        report.figures.recordings = recording_timelines(report.clips, fig_dir)
    limit = rc.timeline_clips
    by_clip = dict(tuple(frames.groupby(schema.CLIP_ID, sort=True)))
    observed = report.observers.counts() if report.observers else {}
    # the first report.timeline_clips clips, and every clip with observer events
    chosen = list(table.index)[: limit if limit is not None else None]
    chosen += sorted(set(observed) - set(chosen))
    mesh = _mesh_table(report.run_dir, cfg)
    mesh_by_clip = dict(tuple(mesh.groupby(schema.CLIP_ID, sort=False))) if mesh is not None \
        else {}
    for cid in chosen:
        if cid in mesh_by_clip and cid in by_clip:
            report.figures.blendshapes[cid] = figures.blendshape_timeline(
                cid, mesh_by_clip[cid], by_clip[cid],
                fig_dir / "timelines" / f"{safe_name(cid)}-blendshapes.png")
        if cid in by_clip:
            golden = table.at[cid, schema.GOLDEN]
            events = report.observers.events_of(cid) if cid in observed else None
            report.figures.timelines[cid] = figures.timeline(
                cid, by_clip[cid], short(table.at[cid, schema.PREDICT]),
                None if pd.isna(golden) else short(golden),
                fig_dir / "timelines" / f"{safe_name(cid)}.png", events=events)
