"""One YAML file -> one typed, frozen, validated :class:`Config`.

Every option is a dataclass field with a type, a default and a one-line ``doc``
(:func:`opt`, :mod:`videmo.config.fields`); the sections are declared in
:mod:`videmo.config.options` (the extraction sections and :class:`Config`) and
:mod:`videmo.config.sections` (run, report, slurm, annotate, learn, train). The loader
(:mod:`videmo.config.load`) is strict: an unknown key fails with a "did you mean" hint, a wrong
type or value names the key and what is allowed, and ``--set key=value`` overrides a key for one
run (:func:`apply_overrides`). The cache keys that guard a run directory live in
:mod:`videmo.config.keys`; ``videmo config --template`` and the reference in docs/config.md
come from :mod:`videmo.config.reference`.

Everything a caller needs is importable from here (``from videmo.config import Config, load``).
"""

from __future__ import annotations

from videmo.config.keys import (
    CORPUS_CLIP_KEYS,
    CORPUS_SELECTION_KEYS,
    EXTRACT_SECTIONS,
    EXTRACT_VERSION,
    OPENCV_DISTRIBUTIONS,
    REPORT_PREFIXES,
    extract_key,
    key_hash,
)
from videmo.config.load import (
    apply_overrides,
    dump,
    from_dict,
    load,
    option_type,
    type_name,
    yaml_problem,
)
from videmo.config.options import (
    ANNOTATE_SHORTCUTS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    AnnotateConfig,
    Config,
    ConfigError,
    CorpusConfig,
    EmotionsConfig,
    FacesConfig,
    HaarConfig,
    LearnConfig,
    MediapipeConfig,
    MeshConfig,
    MtcnnConfig,
    ReportConfig,
    RulesConfig,
    RunConfig,
    SamplingConfig,
    SlurmConfig,
    TracksConfig,
    TrainConfig,
    opt,
    option_types,
    registry_names,
)
from videmo.config.reference import iter_options, reference_markdown, template

__all__ = [
    "ANNOTATE_SHORTCUTS", "CORPUS_CLIP_KEYS", "CORPUS_SELECTION_KEYS", "EXTRACT_SECTIONS",
    "EXTRACT_VERSION", "REPORT_PREFIXES",
    "IMAGE_EXTENSIONS", "OPENCV_DISTRIBUTIONS",
    "VIDEO_EXTENSIONS", "AnnotateConfig", "Config", "ConfigError", "CorpusConfig",
    "EmotionsConfig", "FacesConfig", "HaarConfig", "LearnConfig", "MediapipeConfig", "MeshConfig",
    "MtcnnConfig", "ReportConfig", "RulesConfig", "RunConfig", "SamplingConfig", "SlurmConfig",
    "TracksConfig", "TrainConfig", "apply_overrides", "dump", "extract_key", "from_dict",
    "iter_options", "key_hash", "load", "opt", "option_type", "option_types",
    "reference_markdown", "registry_names", "template", "type_name", "yaml_problem",
]
