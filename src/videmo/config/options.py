"""The config: the sections that change the per-frame numbers (``corpus``, ``sampling``,
``faces``, ``mesh``, ``emotions``: what the cache key reads) and :class:`Config`, which holds
every section, one frozen dataclass each, each field with a type, a default and a one-line
``doc``.

The field machinery (:func:`opt`, :class:`ConfigError`, :func:`option_types`) is in
:mod:`videmo.config.fields`, the other sections (run, report, slurm, annotate, learn, train) in
:mod:`videmo.config.sections`; both are re-exported here and from :mod:`videmo.config`. This
module only declares; reading YAML, coercing values and ``--set`` overrides live in
:mod:`videmo.config.load`, the cache keys in :mod:`videmo.config.keys`, the template and the
reference in :mod:`videmo.config.reference`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from videmo.config.fields import ConfigError, opt, option_types, registry_names
from videmo.config.sections import (
    ANNOTATE_SHORTCUTS,
    AnnotateConfig,
    LearnConfig,
    ReportConfig,
    RulesConfig,
    RunConfig,
    SlurmConfig,
    TrainConfig,
)

if typing.TYPE_CHECKING:
    from videmo.schema import FeatureTable

__all__ = [
    "ANNOTATE_SHORTCUTS", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "AnnotateConfig", "Config",
    "ConfigError", "CorpusConfig", "EmotionsConfig", "FacesConfig", "HaarConfig", "LearnConfig",
    "MediapipeConfig", "MeshConfig", "MtcnnConfig", "ReportConfig", "RulesConfig", "RunConfig",
    "SamplingConfig", "SlurmConfig", "TracksConfig", "TrainConfig", "opt", "option_types",
    "registry_names",
]


VIDEO_EXTENSIONS = [".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".m4v", ".mpg", ".mpeg",
                    ".wmv", ".3gp", ".ts", ".mts", ".ogv"]
IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"]


@dataclass(frozen=True)
class CorpusConfig:
    paths: list[str] = opt([], "Corpus root directories (searched recursively); relative paths "
                               "are resolved against the config file's folder.")
    include: list[str] = opt(["*"], "Glob patterns (on the path relative to its root) a clip "
                                    "must match to be included.")
    exclude: list[str] = opt([], "Glob patterns (on the path relative to its root) that drop "
                                 "a clip.")
    video_extensions: list[str] = opt(VIDEO_EXTENSIONS, "File extensions read as videos "
                                                        "(any container OpenCV/FFmpeg reads).")
    image_extensions: list[str] = opt(
        IMAGE_EXTENSIONS, "Image extensions; a directory holding images and no video is one "
                          "clip (an image sequence).")
    image_fps: float = opt(30.0, "Frame rate given to image-sequence clips (frames sorted by "
                                 "name).", minimum=0, exclusive=True)
    segments: str | None = opt(
        None, "CSV of coded time ranges of long recordings (recording, start, end; optional id, "
              "label, person): each row is a clip of the report (README: Long recordings); "
              "relative to the config file's folder.")
    segments_columns: dict[str, str] = opt(
        {}, "Header names of the segments file's columns by role (recording, start, end, id, "
            "label, person), e.g. {start: Begin Time}; roles not named are found by common "
            "names.")
    window_s: float | None = opt(None, "Cut every recording into windows of this many seconds, "
                                       "each a clip of the report; null: no windows.",
                                 minimum=0, exclusive=True)
    window_step_s: float | None = opt(None, "Seconds from one window's start to the next; "
                                            "null: window_s (consecutive windows).",
                                      minimum=0, exclusive=True)


@dataclass(frozen=True)
class SamplingConfig:
    every_n: int = opt(20, "Analyse every Nth decoded frame (the study used 20). Ignored when "
                           "`fps` is set.", minimum=1)
    fps: float | None = opt(None, "Target sampling rate in frames per second (null: use "
                                  "`every_n`).", minimum=0, exclusive=True)
    start_s: float = opt(0.0, "Skip frames before this time (seconds).", minimum=0)
    end_s: float | None = opt(None, "Stop at this time (seconds, exclusive); null: clip end.",
                              minimum=0, exclusive=True)
    max_frames: int | None = opt(None, "At most this many sampled frames per clip; null: no cap.",
                                 minimum=1)


@dataclass(frozen=True)
class HaarConfig:
    scale_factor: float = opt(1.1, "detectMultiScale scaleFactor (fer's default 1.1).",
                              minimum=1, exclusive=True)
    min_neighbors: int = opt(5, "detectMultiScale minNeighbors (fer's default 5).", minimum=0)
    min_size: int = opt(50, "Smallest face side in full-resolution pixels (fer's default 50).",
                        minimum=1)


@dataclass(frozen=True)
class MtcnnConfig:
    min_confidence: float = opt(0.9, "Drop MTCNN faces below this confidence (0-1).", minimum=0)
    min_size: int = opt(20, "Drop faces with a side below this many full-resolution pixels "
                            "(mtcnn itself always runs with its min_face_size 20).", minimum=1)
    batch_size: int = opt(16, "Frames passed to MTCNN per call (same-size frames batch well).",
                          minimum=1)
    onet: bool = opt(False, "Also run MTCNN's third network, O-Net, which refines each box and "
                            "its confidence, as fer's MTCNN does (false: P- and R-Net only, "
                            "videmo's MTCNN boxes so far).")


@dataclass(frozen=True)
class MediapipeConfig:
    min_score: float = opt(0.5, "Drop BlazeFace detections below this score (0-1; MediaPipe's "
                                "default 0.5).", minimum=0)


@dataclass(frozen=True)
class TracksConfig:
    min_iou: float = opt(0.3, "A face continues a track when its box overlaps the track's last "
                              "box by at least this IoU (0-1).", minimum=0)
    max_shift: float = opt(1.0, "... or, without overlap, when its centre moved less than this "
                                "many box widths (and its size is within 2x).", minimum=0)
    max_gap: int = opt(5, "A track ends after this many sampled frames without its face.",
                       minimum=0)


@dataclass(frozen=True)
class FacesConfig:
    detector: str = opt(
        "haar", "Face detector: OpenCV's Haar cascade (fer's default), MTCNN, mediapipe "
                "(BlazeFace short range, fast; misses faces further than about 2 m, e.g. below "
                "about 128 px in a 720p frame), blazeface_full (BlazeFace full range on the "
                "frame and on tiles: wide shots' faces from about 48 px at 720p) or yunet "
                "(OpenCV's YuNet: wide shots' faces from about 16 px, or 24 px at "
                "faces.yunet.scale 0.5, the recommended setting, at a tenth of MTCNN's cost). "
                "MTCNN also finds small faces cut from their surroundings and rolled heads "
                "(BENCHMARKS.md, Face size).",
        choices="videmo.extract.detectors:DETECTORS")
    select: Literal["largest", "first", "all"] = opt(
        "largest", "Which faces get a row: the largest box, the detector's first box (the "
                   "study), or all (one row per face).")
    max_width: int | None = opt(None, "Downscale frames wider than this before detection (boxes "
                                      "are mapped back to full resolution); null: never.",
                                minimum=16)
    haar: HaarConfig = field(default_factory=HaarConfig, metadata={"doc": "Haar cascade options."})
    mtcnn: MtcnnConfig = field(default_factory=MtcnnConfig, metadata={"doc": "MTCNN options."})
    mtcnn_engine: Literal["litert", "tensorflow"] = opt(
        "litert", "What runs MTCNN's networks: LiteRT (no TensorFlow import; the mtcnn package's "
                  "boxes within float rounding) or TensorFlow via the mtcnn package (the "
                  "reference, bit for bit as in runs made before LiteRT).")
    mediapipe: MediapipeConfig = field(default_factory=MediapipeConfig,
                                       metadata={"doc": "BlazeFace (mediapipe) options."})
    tracks: TracksConfig = field(default_factory=TracksConfig, metadata={
        "doc": "Face tracks: a `track` id links a clip's faces across sampled frames."})


@dataclass(frozen=True)
class MeshConfig:
    min_presence: float = opt(0.5, "Keep a face's mesh when MediaPipe's face presence score "
                                   "is at least this (0-1); below it the row has no mesh.",
                              minimum=0)


@dataclass(frozen=True)
class EmotionsConfig:
    model: str = opt(
        "pixels_real", "Frame model that scores the seven emotions of a face: pixels_real "
               "(the default: videmo's convolutional networks on a 48x48 grey face crop "
               "framed for the detector, their last layer fitted on real photos + FER2013; "
               "best on real photos, MODELS.md; LiteRT, no TensorFlow), pixels (the same "
               "networks with their FER2013-only last layers), pixels_distilled (one of those "
               "networks trained on pixels_real's outputs, about a third of its cost), fer "
               "(fer's mini-Xception on the face's pixels: the original study's), blendshapes "
               "(a network on MediaPipe blendshapes) or landmarks (a 1D-CNN on pose-normalised "
               "landmarks); the pixel, blendshape and landmark networks were trained by videmo "
               "train on FER2013 (MODELS.md); blendshapes and landmarks turn the face mesh on "
               "by themselves and give no scores to a face the mesh cannot read.",
        choices="videmo.extract.features.frame_models:FRAME_MODELS")
    align: bool = opt(False, "emotions.model pixels, pixels_real or pixels_distilled: rotate "
                             "each face crop so the eyes are level (BlazeFace's eye keypoints; "
                             "OpenCV's eye cascade in a box without keypoints; no rotation when "
                             "no eye pair is found). Off by default: no gain measured "
                             "(MODELS.md).")
    flip: bool = opt(False, "emotions.model pixels, pixels_real or pixels_distilled: average "
                            "each face's scores with its mirror image's (test-time flip; twice "
                            "the cost per face).")
    engine: Literal["tflite", "keras"] = opt(
        "tflite", "FER model runtime (emotions.model: fer): the quantized tflite file (CPU, "
                  "fer's default) or the Keras .hdf5 model run in batches (useful on a GPU).")
    batch_size: int = opt(64, "Faces per call of the Keras engine.", minimum=1)


@dataclass(frozen=True)
class Config:
    corpus: CorpusConfig = field(default_factory=CorpusConfig,
                                 metadata={"doc": "Which clips to analyse."})
    sampling: SamplingConfig = field(default_factory=SamplingConfig,
                                     metadata={"doc": "Which frames of a clip to analyse."})
    faces: FacesConfig = field(default_factory=FacesConfig,
                               metadata={"doc": "How faces are found and chosen."})
    features: list[str] = opt(
        ["emotions"], "Per-face feature extractors: emotions (the seven scores of "
                      "emotions.model; the per-frame table, always on) and mesh (MediaPipe face "
                      "mesh: 478 landmarks, 52 blendshapes, head pose; "
                      "RUN/features/mesh.parquet).",
        choices="videmo.extract.features:EXTRACTORS")
    mesh: MeshConfig = field(default_factory=MeshConfig,
                             metadata={"doc": "The face mesh extractor (features: mesh)."})
    emotions: EmotionsConfig = field(default_factory=EmotionsConfig,
                                     metadata={"doc": "Which frame model scores a face's seven "
                                                      "emotions, and how."})
    run: RunConfig = field(default_factory=RunConfig,
                           metadata={"doc": "Where outputs go and how the work is spread."})
    report: ReportConfig = field(default_factory=ReportConfig,
                                 metadata={"doc": "How frames become clip labels and metrics."})
    slurm: SlurmConfig = field(default_factory=SlurmConfig,
                               metadata={"doc": "SLURM job arrays (videmo submit)."})
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig,
                                     metadata={"doc": "The observer annotation page (videmo "
                                                      "annotate)."})
    learn: LearnConfig = field(default_factory=LearnConfig,
                               metadata={"doc": "Learned clip classifiers and their honest "
                                                "evaluation (videmo learn)."})
    train: TrainConfig = field(default_factory=TrainConfig,
                               metadata={"doc": "Frame classifiers trained on still faces "
                                                "(videmo train, MODELS.md)."})
    base_dir: str = field(default=".", metadata={"doc": None}, compare=False)
    # the sections of registered plug-ins given in the file, by dotted path (config/plugins.py)
    plugins: dict[str, Any] = field(default_factory=dict, metadata={"doc": None})

    def to_dict(self, plugin_defaults: bool = True) -> dict[str, Any]:
        """The resolved config as plain data (the form written next to outputs): every
        registered plug-in's section too, its defaults where the file does not give it (so a
        file that spells out the defaults, as the template does, is the same config);
        ``plugin_defaults=False``: only the sections given."""
        from videmo.config.plugins import plugin_sections, put

        d = dataclasses.asdict(self)
        d.pop("base_dir")
        given = d.pop("plugins")
        if plugin_defaults:
            for path, (options, _doc) in plugin_sections().items():
                if path not in given:
                    put(d, path, dataclasses.asdict(options()))
        for path, values in given.items():
            put(d, path, values)
        return d

    def options(self, section: str) -> Any:
        """The options of a dotted ``section``: the config's own (``faces.haar``) or a
        registered plug-in's (its defaults when the file does not give it)."""
        from videmo.config.plugins import section_options

        return section_options(self, section)

    # The cache keys are assembled by the extract stage from the parts' specs; the config
    # names where (a reference read on first use, as ``choices`` are) and imports no stage.
    def extract_key(self) -> dict[str, Any]:
        """Everything that changes the per-frame numbers, as plain data (kept in run.json so a
        refusal can name what differs); see :func:`videmo.extract.keys.extract_key`."""
        from videmo.registry import resolve

        return resolve("videmo.extract.keys:extract_key")(self)

    def feature_tables(self) -> list[FeatureTable]:
        """The side tables this config computes (every extractor of ``features`` but the
        per-frame one), each with its cache hash; read from the extractors' declarations
        (:func:`videmo.extract.features.side_tables`)."""
        from videmo.registry import resolve

        return resolve("videmo.extract.features:side_tables")(self)

    def table_hash(self, name: str) -> str | None:
        """The cache hash of side table ``name`` (``mesh``); None when ``features`` lacks it."""
        return next((t.cache_hash for t in self.feature_tables() if t.name == name), None)

    def extract_hash(self) -> str:
        """Hash of :meth:`extract_key`: a clip done under another hash is redone (not report or
        run options, nor the corpus keys that only choose clips)."""
        from videmo.config import keys

        return keys.key_hash(self.extract_key())

    def resolve(self, path: str | None) -> Path | None:
        """A path from the config, relative to the config file's folder."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    def absolute(self) -> Config:
        """The same config with every path made absolute, for jobs that run elsewhere."""
        def absolute(path: str | None) -> str | None:
            return None if path is None else str(self.resolve(path))

        return dataclasses.replace(
            self,
            corpus=dataclasses.replace(self.corpus, paths=[str(p) for p in self.corpus_paths],
                                       segments=absolute(self.corpus.segments)),
            run=dataclasses.replace(self.run, out=str(self.out_dir.resolve())),
            report=dataclasses.replace(self.report, labels=absolute(self.report.labels),
                                       out=absolute(self.report.out),
                                       classifier=absolute(self.report.classifier)),
            slurm=dataclasses.replace(self.slurm, templates=absolute(self.slurm.templates)),
            annotate=dataclasses.replace(self.annotate, cache=absolute(self.annotate.cache)),
            base_dir="/")

    @property
    def corpus_paths(self) -> list[Path]:
        return [typing.cast(Path, self.resolve(p)) for p in self.corpus.paths]

    @property
    def out_dir(self) -> Path:
        return Path(self.run.out).expanduser()

