"""The config sections that leave the per-frame numbers alone: where a run goes and how its
work is spread (``run``, ``slurm``), how frames become clip labels (``report`` and its
``rules``), the annotation page (``annotate``), learned clip classifiers (``learn``) and frame
classifiers trained on still faces (``train``).

Declared with :func:`videmo.config.fields.opt` like every section; the extraction sections and
the :class:`~videmo.config.options.Config` that holds them all are in
:mod:`videmo.config.options`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from videmo import schema
from videmo.config.fields import ConfigError, opt
from videmo.registry import did_you_mean


@dataclass(frozen=True)
class RunConfig:
    out: str = opt("runs/run", "Run directory for all outputs; relative paths are resolved "
                               "against the current directory.")
    jobs: int | None = opt(None, "Cores this run uses on this machine: one worker process each "
                                 "(each loads the models once); null: every core this process "
                                 "may use (a SLURM task: its CPUs).", minimum=1)
    threads: int | None = opt(None, "Threads per worker for OpenCV/TensorFlow and FFmpeg's "
                                    "decoder; null: the worker's share of run.jobs (1 when "
                                    "every worker is busy; all of them for a single clip; "
                                    "at a run's end, idle workers' cores go to OpenCV's "
                                    "threads in the busy ones).",
                              minimum=1)
    on_error: Literal["continue", "abort"] = opt("continue", "On a failed clip: record it and "
                                                             "go on, or stop the run.")
    chunk_s: float | None = opt(300.0, "Recordings longer than this are split into chunks of "
                                       "this many seconds, the units of --jobs, SLURM shards "
                                       "and resume (cut exactly at frame timestamps); with "
                                       "jobs > 1, into a multiple of jobs equal chunks (none "
                                       "under 30 s) when that keeps every worker busy; null: a "
                                       "recording is one unit.", minimum=0, exclusive=True)


@dataclass(frozen=True)
class RulesConfig:
    top_fraction: float = opt(0.2, "expressive / confident: share of a clip's face rows the "
                                   "clip is labelled from (its peak rows).", minimum=0,
                              exclusive=True)
    min_frames: int = opt(3, "expressive / confident: at least this many peak rows (all rows "
                             "of a shorter clip).", minimum=1)
    baseline: Literal["clip", "group"] = opt(
        "clip", "expressive / peak: the person's resting face comes from the clip itself or "
                "from every clip of its group (report.group_pattern).")
    baseline_fraction: float = opt(0.25, "expressive / peak: share of rows, the most neutral, "
                                         "that make the baseline.", minimum=0, exclusive=True)
    min_rise: float = opt(0.1, "expressive / peak: the least mean rise of the winning class "
                               "over the baseline (probability points, 0-1).", minimum=0)
    min_confidence: float = opt(0.5, "confident: the least mean probability of the winning "
                                     "class over the peak rows (0-1).", minimum=0)
    window_frames: int = opt(3, "peak: face rows (consecutive, in frame order) in the peak "
                                "segment.", minimum=1)
    fallback: Literal["majority", "mean"] = opt(
        "majority", "Label of a clip where the rule abstains (no class stands out): the "
                    "majority vote or the mean.")


@dataclass(frozen=True)
class ReportConfig:
    labels: str | None = opt(None, "Golden labels CSV, UTF-8, comma / semicolon / tab separated "
                                   "(clip id or file name, label; see README, Golden labels); "
                                   "relative to the config file; null: no evaluation.")
    labels_clip_column: str | None = opt(None, "Header name of the labels file's clip column; "
                                               "null: a known name (clip, clip_id, filename, "
                                               "file, video, name, id, ...), else the first "
                                               "column.")
    labels_label_column: str | None = opt(None, "Header name of the labels file's label column; "
                                                "null: a known name (label, golden, class, "
                                                "emotion, sentiment, ...), else the second "
                                                "column.")
    label_aliases: dict[str, str] = opt({}, "Extra label values (any case) and the class or "
                                            "emotion each means, e.g. {N: neutral, H: happy}; "
                                            "any other unknown value is an error.")
    strict_labels: bool = opt(False, "Fail when labels are missing, extra, duplicate or empty "
                                     "(otherwise they are reported by name).")
    mapping: dict[str, str] = opt(dict(schema.STUDY_MAPPING), "Seven emotions -> positive / "
                                                              "negative / neutral (the study's "
                                                              "table by default).")
    frame_label: Literal["top", "sum"] = opt(
        "top", "Frame label: top of the seven emotions, then mapped (the study), or top of the "
               "three summed probabilities.")
    aggregate: str = opt(
        "majority", "Clip label: majority of frame labels, label of the mean probabilities, "
                    "majority over intervals of `interval_frames` frames, or an expressive-frame "
                    "rule (`report.rules`: the top frames by rise over the person's baseline, "
                    "the most confident non-neutral frames, or the peak segment).",
        choices="videmo.evaluate.aggregates:AGGREGATES")
    interval_frames: int = opt(1000, "Decoded frames per interval for aggregate: interval (the "
                                     "study used 1,000).", minimum=1)
    rules: RulesConfig = field(default_factory=RulesConfig, metadata={
        "doc": "Expressive-frame rules (report.aggregate: expressive, confident, peak)."})
    track: Literal["all", "main"] = opt(
        "all", "Which face rows vote: all (each frame's selected faces) or main (only the "
               "clip's main face track: most rows, then largest; with faces.select: all this "
               "follows one person instead of each frame's largest box).")
    tie: Literal["probability", "neutral", "order"] = opt(
        "probability", "Tie rule between classes with equal votes: larger summed probability, "
                       "neutral if tied, or class order (positive, negative, neutral).")
    balance: Literal["none", "uniform", "golden", "shares"] = opt(
        "none", "Reassign clip labels by rank so predicted class proportions match uniform "
                "shares, `balance_shares`, or the golden distribution (golden is an oracle: it "
                "reads the test labels, needs report.labels, and its numbers are no fair "
                "estimate; see README).")
    balance_shares: dict[str, float] = opt({}, "Target shares per class for balance: shares, "
                                               "e.g. {positive: 0.3, negative: 0.3, "
                                               "neutral: 0.4}.")
    group_pattern: str = opt(r"^([^_]+)", "Regular expression on the clip's file name; its "
                                          "first group names the clip's group (biden_58.0 -> "
                                          "biden).")
    figures: bool = opt(True, "Write PNG figures.")
    timeline_clips: int | None = opt(50, "Clips that get a per-clip timeline figure (the first "
                                         "N by id); null: all.", minimum=0)
    classifier: str | None = opt(None, "A clip classifier saved by videmo learn (its model "
                                       "folder); it labels every clip with a face instead of "
                                       "`aggregate` (decided_by: its name); null: none.")
    out: str | None = opt(None, "Report directory; null: RUN/report.")


@dataclass(frozen=True)
class SlurmConfig:
    shards: int = opt(20, "Array tasks the corpus is split into, balanced by frames to sample "
                          "(at most one per clip).", minimum=1)
    max_concurrent: int | None = opt(10, "Array tasks running at once (--array=...%K); null: "
                                         "no limit.", minimum=1)
    partition: str | None = opt(None, "sbatch --partition; null: the cluster's default.")
    account: str | None = opt(None, "sbatch --account; null: your default account.")
    time: str = opt("04:00:00", "Time limit of one array task (sbatch --time, e.g. 04:00:00 "
                                "or 1-00:00:00).")
    mem: str = opt("4G", "Memory of one array task (sbatch --mem).")
    cpus_per_task: int = opt(2, "CPUs of one array task: one worker each when run.jobs is "
                                "null.", minimum=1)
    gpus: str | None = opt(None, "sbatch --gpus for each array task (e.g. 1 or a100:1); "
                                 "TensorFlow uses a granted GPU for MTCNN and the Keras engine.")
    merge_time: str = opt("01:00:00", "Time limit of the merge job (videmo report).")
    merge_mem: str = opt("4G", "Memory of the merge job.")
    job_name: str = opt("videmo", "Job name prefix (NAME-extract, NAME-merge).")
    extra: list[str] = opt([], "Extra sbatch options, one per item, for both jobs, e.g. "
                               "--qos=short or --constraint=avx2.")
    setup: list[str] = opt([], "Shell lines run before videmo in every job, e.g. module load "
                               "or source ~/venvs/videmo/bin/activate.")
    command: str | None = opt(None, "How a job runs videmo; null: this Python with -m videmo "
                                    "(a shared file system is assumed).")
    templates: str | None = opt(None, "Folder with your own extract-array.sbatch and "
                                      "merge-report.sbatch templates; null: the shipped ones "
                                      "(scripts/slurm/templates).")


ANNOTATE_SHORTCUTS = {"angry": "a", "disgust": "d", "fear": "f", "happy": "h", "sad": "s",
                      "surprise": "u", "neutral": "n", "laughing": "l", "applause": "p",
                      "booing": "b", "crying": "c"}
_BUTTON_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class AnnotateConfig:
    buttons: list[str] = opt(list(schema.EMOTIONS + schema.OBSERVER_EVENTS),
                             "Buttons of the annotation page, in order (lower-case names; the "
                             "seven emotions are compared with the predicted frame emotion).")
    shortcuts: dict[str, str] = opt(ANNOTATE_SHORTCUTS, "Keyboard shortcuts (one character) "
                                                        "added to / replacing the built-in "
                                                        "ones; arrows: previous / next clip, "
                                                        "space: play / pause.")
    host: str = opt("127.0.0.1", "Address the page is served on; anything but 127.0.0.1 "
                                 "exposes the clips and the page to that network.")
    port: int = opt(0, "TCP port of the page; 0: a free port (printed at start).", minimum=0)
    transcode: Literal["auto", "always"] = opt(
        "auto", "auto: serve MP4 (H.264) and WebM clips as they are and transcode the rest "
                "(flv, avi, ...) to WebM/VP9; always: transcode every clip.")
    cache: str | None = opt(None, "Folder of transcoded clips (keyed by file path, size and "
                                  "mtime; originals are never modified); null: "
                                  "$XDG_CACHE_HOME/videmo/transcode or ~/.cache/videmo/"
                                  "transcode.")

    def __post_init__(self) -> None:
        """Checks that need the whole section; errors name the key and the value."""
        if self.port > 65535:
            raise ConfigError(f"config key 'annotate.port': must be at most 65535, got "
                              f"{self.port}")
        if not self.buttons:
            raise ConfigError("config key 'annotate.buttons': give at least one button")
        for name in self.buttons:
            if not _BUTTON_NAME.match(name):
                raise ConfigError(f"config key 'annotate.buttons': {name!r} is not a button "
                                  "name (lower-case letters, digits, _ or -, at most 32)")
        dup = sorted({b for b in self.buttons if self.buttons.count(b) > 1})
        if dup:
            raise ConfigError(f"config key 'annotate.buttons': {dup[0]!r} appears twice")
        # given shortcuts add to / replace the built-in ones (a mapping key replaces, not merges)
        object.__setattr__(self, "shortcuts", {**ANNOTATE_SHORTCUTS, **self.shortcuts})
        for button, key in self.shortcuts.items():
            if button not in self.buttons and ANNOTATE_SHORTCUTS.get(button) != key:
                extra = did_you_mean(button, self.buttons, " (did you mean '{}'?)")
                raise ConfigError(f"config key 'annotate.shortcuts.{button}': not one of "
                                  f"annotate.buttons{extra}")
            if len(key) != 1 or not key.isprintable() or key.isspace():
                raise ConfigError(f"config key 'annotate.shortcuts.{button}': {key!r} is not "
                                  "one printable character (space is play / pause)")
        by_key: dict[str, list[str]] = {}
        for button, key in self.keys().items():
            by_key.setdefault(key.lower(), []).append(button)
        for key, buttons in by_key.items():
            if len(buttons) > 1:
                raise ConfigError(f"config key 'annotate.shortcuts': the key {key!r} is given "
                                  f"to {' and '.join(buttons)}; give one of them another key")

    def keys(self) -> dict[str, str]:
        """Shortcut of each button that has one (built-in shortcuts of absent buttons dropped)."""
        return {b: k for b, k in self.shortcuts.items() if b in self.buttons}


@dataclass(frozen=True)
class LearnConfig:
    features: list[str] = opt(["fer"], "Feature sets to learn from: a family name (fer; "
                                       "blendshapes, landmarks: need features: [emotions, mesh]) "
                                       "or names joined by + (fer+blendshapes); each set is a "
                                       "row per classifier, and with several sets the inner CV "
                                       "also chooses one (features: selected).")
    classifiers: list[str] = opt(
        ["logistic", "gboost", "lstm"], "Learned clip classifiers: logistic regression and "
                                        "gradient boosting on pooled statistics per clip, an "
                                        "LSTM over the frame sequence.",
        choices="videmo.evaluate.learn.base:LEARNERS")
    folds: int = opt(5, "Outer cross-validation: GroupKFold splits by person "
                        "(report.group_pattern) when there are more than `logo_max_groups` "
                        "groups.", minimum=2)
    logo_max_groups: int = opt(10, "Up to this many groups the outer CV leaves one group out "
                                   "at a time (LeaveOneGroupOut).", minimum=2)
    inner_folds: int = opt(3, "Grouped folds of the inner CV that chooses hyper-parameters "
                              "and the feature set on the training fold only.", minimum=2)
    one_group: Literal["clips", "refuse"] = opt(
        "clips", "When every clip is one person's: leave one clip out (said loudly: not "
                 "person-grouped, optimistic for new persons) or refuse.")
    seed: int = opt(0, "Seed of every random choice (folds' shuffles, models, bootstrap).",
                    minimum=0)
    bootstrap: int = opt(2000, "Bootstrap repetitions for the 95% confidence intervals.",
                         minimum=100)
    bootstrap_unit: Literal["auto", "groups", "clips"] = opt(
        "auto", "What the bootstrap resamples: groups (persons; clips of a person are not "
                "independent), clips, or auto: groups when there are at least 10, else clips.")
    max_frames: int = opt(64, "LSTM: clips with more face rows are subsampled evenly to this "
                              "many (shorter clips are padded and masked).", minimum=1)
    lstm_units: int = opt(16, "LSTM: units of its one recurrent layer (fixed, not tuned).",
                          minimum=1)
    lstm_epochs: int = opt(40, "LSTM: training epochs (fixed, not tuned).", minimum=1)
    out: str | None = opt(None, "Folder of the results and the saved model; null: RUN/learn.")




@dataclass(frozen=True)
class TrainConfig:
    data: str | None = opt(None, "The still-image set: FER2013's folder copy (emotion folders "
                                 "of Training_<n>.jpg, PublicTest_<n>.jpg, PrivateTest_<n>.jpg) "
                                 "or fer2013.csv; never committed (no open licence).")
    format: Literal["folders", "csv"] = opt("folders", "How train.data is laid out: emotion "
                                                       "folders or the standard fer2013.csv.")
    cache: str = opt("~/.cache/videmo/train", "Folder of the cached per-image mesh features "
                                              "(resumable chunks); keep it outside the repo.")
    out: str = opt("runs/train", "Folder of results.json, results.md and the trained models.")
    seed: int = opt(0, "Seed of the holdout split, the networks and gradient boosting.",
                    minimum=0)
    epochs: int = opt(30, "Most training epochs per network (early stopping on the selection "
                          "split may stop sooner).", minimum=1)
    patience: int = opt(5, "Epochs without a better selection accuracy before stopping.",
                        minimum=1)
    batch_size: int = opt(128, "Images per training step.", minimum=1)
    upscale: int = opt(192, "Side in pixels the 48x48 faces are upscaled to (bicubic) "
                            "before the face mesh.", minimum=48)
    models: list[str] = opt(
        ["blend_lstm", "blend_mlp", "blend_gboost", "land_cnn_procrustes", "land_cnn_minmax"],
        "Models to train side by side: the blendshape LSTM, MLP and gradient boosting, the "
        "landmark 1D-CNN with pose normalisation or min-max only, and pixel_vgg (a "
        "convolutional network on the 48x48 face crops, resumable per epoch; see "
        "configs/train-pixels.yaml; pixel_vgg_48 and pixel_vgg_64: the same with 1.5x and 2x "
        "the filters).",
        choices="videmo.train:TRAIN_MODELS")
    seeds: list[int] | None = opt(None, "Pixel models: one network per seed, their averaged "
                                        "probabilities are the model (one TFLite file); null: "
                                        "one network, seed train.seed.")
    import_weights: str | None = opt(
        None, "Pixel models: a folder of networks trained elsewhere by "
              "scripts/train_pixels_gpu.py (<model>-s<seed>.npz, summary*.json; e.g. on a GPU "
              "with PyTorch): they are imported (checked against the probabilities recorded "
              "there), exported and scored as if trained here; null: train here.")
    min_score: float = opt(0.4, "Blendshape selection: a score counts above this.", minimum=0)
    min_images: int = opt(100, "Blendshape selection: kept when above min_score in more than "
                               "this many fitted images.", minimum=0)
    limit: int | None = opt(None, "Use at most this many images per split (evenly spaced), "
                                  "for a quick measurement; null: all.", minimum=1)
    workers: int | None = opt(None, "Processes extracting features; null: the CPUs available.",
                              minimum=1)
