"""The ``videmo`` command line's parser table: every command, its arguments and its help.

The commands themselves live beside it, one module per group (:mod:`.runs`, :mod:`.jobs`,
:mod:`.tools`); :mod:`videmo.cli` maps the names to them.
"""

from __future__ import annotations

import argparse

from videmo import __version__
from videmo.extract.detectors import DETECTORS


def add_overrides(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--set KEY=VALUE``, repeatable, into ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=help)


def add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file (see `videmo config --template`)")
    add_overrides(p, "override a config key for this run, e.g. --set sampling.every_n=10 "
                        "(repeatable; string keys take the text as it is, other values are "
                        "YAML; null unsets)")
    p.add_argument("--out", help="run directory (overrides run.out)")
    p.add_argument("--detector", choices=DETECTORS, help="overrides faces.detector")
    p.add_argument("--jobs", "-j", type=int,
                   help="cores to use, one worker process each (overrides run.jobs; default: "
                        "every core)")


def _add_extract_args(p: argparse.ArgumentParser) -> None:
    _add_config_args(p)
    p.add_argument("--force", action="store_true",
                   help="redo clips already done, and reuse a run directory made with another "
                        "config")
    add_no_progress(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videmo",
        description="Emotion in video, per clip: sample frames, find faces (Haar, MTCNN or "
                    "BlazeFace), score seven emotions with the FER model, videmo's pixel "
                    "model or a frame model on MediaPipe's face mesh (emotions.model; "
                    "features: mesh keeps the mesh), "
                    "label each clip by a vote, a rule or a learned classifier and compare it "
                    "with golden labels.")
    parser.add_argument("--version", action="version", version=f"videmo {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("extract", help="videos -> per-frame table of faces and 7 emotion scores",
                       description="Sample frames of every clip, find faces, score them; writes "
                                   "RUN/frames.parquet and RUN/manifest.csv. Resumes: clips "
                                   "already done with the same config are skipped.")
    _add_extract_args(p)
    p.add_argument("--shard", metavar="I/N",
                   help="do shard I of N (0-based) of the corpus, balanced by frames to sample; "
                        "default inside a SLURM array (0..N-1): SLURM_ARRAY_TASK_ID/"
                        "SLURM_ARRAY_TASK_COUNT. The merged tables are left to `videmo report`.")

    p = sub.add_parser("run", help="the main job: extract, then report",
                       description="extract + report in one command (resumes like extract).")
    _add_extract_args(p)
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")

    p = sub.add_parser("report", help="per-frame table -> per-clip CSV, metrics, figures",
                       description="Rebuild the report of a run directory from its per-frame "
                                   "table, in seconds, without touching a video. Report options "
                                   "may differ from the run's: --set report.aggregate=mean.")
    p.add_argument("run_dir", help="run directory made by extract/run")
    add_overrides(p, "override a report.* key or corpus.segments / window_s (re-cut clips)")
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")
    p.add_argument("--out", help="report directory (default RUN_DIR/report)")
    p.add_argument("--classifier", metavar="MODEL_DIR",
                   help="label clips with a model saved by videmo learn (report.classifier)")
    p.add_argument("--fail-incomplete", action="store_true",
                   help="exit 1 while clips of the run are not done (failed, interrupted, never "
                        "extracted); the report is written all the same. The SLURM merge job "
                        "uses it, so its state (FAILED) shows that the run is not clean")

    p = sub.add_parser("verify", help="check a run directory against its own records",
                       description="Check that every file of a run directory is what its "
                                   "records say: run.json and config.yaml agree, every done "
                                   "clip's parts have their recorded sha256 and row count, the "
                                   "merged tables equal their parts, the model files are the "
                                   "recorded ones, the report was built from the current rows, "
                                   "and no file of other settings is left. One line per "
                                   "problem and a summary; exit 1 when there is any. "
                                   "`videmo run` repairs what it names.")
    p.add_argument("run_dir", help="run directory made by extract/run")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("learn", help="learn clip labels from a labelled run; honest evaluation",
                       description="Baselines, expressive-frame rules and learned classifiers "
                                   "(pooled statistics -> logistic regression, gradient "
                                   "boosting; an LSTM over frames) evaluated by person-grouped, "
                                   "nested cross-validation with bootstrap intervals, from the "
                                   "run's own per-frame table (and face mesh: --set "
                                   "'learn.features=[fer, blendshapes, landmarks]'). Writes "
                                   "RUN/learn/results.csv, "
                                   "summary.txt, results.png and the best model in model/.")
    p.add_argument("run_dir", help="labelled run directory made by extract/run")
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")
    add_overrides(p, "override a learn.* or report.* key, e.g. --set learn.folds=10")
    p.add_argument("--out", help="results folder (default RUN_DIR/learn; learn.out)")
    add_no_progress(p)

    p = sub.add_parser("train", help="train frame classifiers on still faces (FER2013)",
                       description="Frame classifiers of a still-image set (train.data): "
                                   "on its face mesh (blendshape LSTM, MLP and gradient "
                                   "boosting, landmark 1D-CNNs) or on its 48x48 face crops "
                                   "(pixel_vgg, checkpointed every epoch: run again to resume), "
                                   "chosen on the selection split, evaluated once on "
                                   "PrivateTest. Writes train.out/results.json, results.md and "
                                   "models/.")
    p.add_argument("config", help="YAML config file with a train: section")
    add_overrides(p, "override a config key, e.g. --set train.epochs=5")
    p.add_argument("--out", help="results folder (overrides train.out)")
    add_no_progress(p)

    p = sub.add_parser("submit", help="run extract as a SLURM job array, then a merge job",
                       description="Split the corpus into shards (slurm.shards) and submit one "
                                   "array task per shard (videmo extract --shard I/N) and a merge "
                                   "job (videmo report) that runs when every task has ended, "
                                   "however it ended: it writes the report with failed clips "
                                   "counted and ends FAILED while clips are not done. Prints "
                                   "the job ids and the run directory.")
    p.add_argument("config", nargs="?", help="YAML config file (with a slurm: section)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="submit again only the shards of RUN_DIR with clips not done (failed, "
                        "interrupted, never started, file changed), then the merge job; --set "
                        "changes the run's job config (e.g. corpus.exclude, slurm.time)")
    add_overrides(p, "override a config key, e.g. --set slurm.partition=short")
    p.add_argument("--out", help="run directory (overrides run.out)")
    p.add_argument("--detector", choices=DETECTORS, help="overrides faces.detector")
    p.add_argument("--jobs", "-j", type=int,
                   help="worker processes per task (run.jobs; default: one per CPU of the task)")
    p.add_argument("--shards", type=int, help="number of array tasks (overrides slurm.shards)")
    p.add_argument("--force", action="store_true",
                   help="reuse a run directory made with another config (its clips are redone)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the sbatch scripts; submit and write nothing")

    p = sub.add_parser("status", help="clips done / failed / interrupted / pending, per shard",
                       description="Read a run directory (and squeue/scontrol/sacct, for "
                                   "submitted runs): clips done, failed, interrupted and pending "
                                   "(never started), per shard and in total, with the failure "
                                   "reasons and what finishes the run. Exit 0 when every clip "
                                   "is done, 1 otherwise.")
    p.add_argument("run_dir", help="run directory")
    p.add_argument("--clips", action="store_true",
                   help="list every failed, interrupted and truncated clip (default: the first 10)")

    p = sub.add_parser("compare", help="run or collect several runs; the study's table + chart",
                       description="With a comparison job (jobs/compare-*.yaml): extract + "
                                   "report every combination of its `vary` values, here or on "
                                   "SLURM, then write comparison.csv/.md/.png/.html: each row "
                                   "with its accuracy difference against the reference row on "
                                   "the clips both labelled, its paired bootstrap interval and "
                                   "McNemar's exact p. With --runs: collect finished runs.")
    p.add_argument("job", nargs="?", help="comparison job YAML (a top-level compare: section)")
    p.add_argument("--runs", nargs="+", metavar="RUN_DIR", help="collect these finished runs")
    p.add_argument("--out", help="where the comparison tables go (default: the job's out, or "
                                 "runs/comparison with --runs)")
    p.add_argument("--reference", metavar="NAME", help="the row the others are set against "
                   "(default: compare.reference, else the first row)")
    p.add_argument("--slurm", action="store_true", help="on SLURM (compare.executor: slurm): "
                   "each extraction an array + merge job (as submit), then a job that waits "
                   "for every merge job and writes the tables; prints the job ids")
    p.add_argument("--dry-run", action="store_true", help="with --slurm: print the sbatch "
                   "scripts; submit and write nothing")
    p.add_argument("--collect", action="store_true", help="only tabulate the job's finished "
                   "runs (what the SLURM compare job runs)")
    p.add_argument("--force", action="store_true", help="redo clips already done")
    add_no_progress(p)

    p = sub.add_parser("annotate", help="a local page where observers mark events in the clips",
                       description="Serve a page (127.0.0.1, a free port, printed) that plays the "
                                   "corpus's clips with buttons for annotate.buttons; every press "
                                   "is appended to RUN/annotations.csv at once. Ctrl-C stops.")
    p.add_argument("config", help="YAML config file (its corpus and annotate: section)")
    add_overrides(p, "override a config key, e.g. --set annotate.transcode=always")
    p.add_argument("--out", help="run directory of annotations.csv (overrides run.out)")
    p.add_argument("--host", help="address to serve on (overrides annotate.host; anything but "
                                  "127.0.0.1 exposes the page to that network)")
    p.add_argument("--port", type=int, help="port (overrides annotate.port; 0: a free one)")
    p.add_argument("--observer", default="", help="observer name filled in on the page")

    p = sub.add_parser("config", help="print a documented config template, or check a config",
                       description="Without arguments: print the template (every option, its "
                                   "default and doc).")
    p.add_argument("action", nargs="?", choices=["template", "check", "show", "reference"],
                   default="template",
                   help="template (default): documented YAML; check FILE: validate; show "
                        "FILE: the resolved config; reference: the markdown option table")
    p.add_argument("file", nargs="?", help="config file for check/show")
    p.add_argument("--template", action="store_true", help="same as the template action")
    add_overrides(p)
    return parser
