"""The extract key, assembled from the specs of the parts a config chooses.

Everything that changes the per-frame numbers, as plain data (kept in run.json, so a refusal
can name what differs): the extract sections without the corpus keys that only choose clips,
:data:`videmo.config.keys.EXTRACT_VERSION`, the sha256 of the model files the chosen detector
and frame model load and the versions of the packages that run them. Nothing here knows a
part by name: each spec (:mod:`videmo.extract.specs`) says its files, its packages, the
``emotions`` options that count (a frame model's ``keyed``) and which of its options stay out
of the key while they hold the behaviour of before they existed (a detector's ``key``), so the
runs made then stay done. tests/test_extract_keys.py pins the keys of every shipped config and
detector x frame model pair.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from videmo import runtime
from videmo.config import keys as config_keys
from videmo.config.plugins import put
from videmo.extract.detectors import DETECTORS, detector_spec
from videmo.extract.features.frame_models import frame_model_spec
from videmo.extract.specs import DISTRIBUTIONS

if TYPE_CHECKING:
    from videmo.config import Config

# OpenCV decodes and crops in every run; the parts add their own packages
BASE_PACKAGES = ("opencv",)


def _own_options(key: dict[str, Any], spec: Any, cfg: Config) -> None:
    """A plug-in's own section (not one of the config's fields) enters the key at its path."""
    if spec.section and spec.options is not None and spec.section.split(".")[0] in key:
        put(key, spec.section, dataclasses.asdict(cfg.options(spec.section)))


def extract_key(cfg: Config) -> dict[str, Any]:
    """The extract key of ``cfg`` (see the module doc); ``cfg.extract_key()`` calls this."""
    from videmo.models import model_hashes

    detector = detector_spec(cfg.faces.detector)
    model = frame_model_spec(cfg.emotions.model)
    d = dataclasses.replace(cfg, plugins={}).to_dict(plugin_defaults=False)
    key: dict[str, Any] = {k: d[k] for k in config_keys.EXTRACT_SECTIONS}
    key["corpus"] = {k: v for k, v in key["corpus"].items()
                     if k not in config_keys.CORPUS_SELECTION_KEYS + config_keys.CORPUS_CLIP_KEYS}
    # every registered detector trims its own options (the shipped ones' sections are all in
    # `faces`, chosen or not, as they were when the key was first written)
    for name in DETECTORS:
        key["faces"] = detector_spec(name).trim_key(key["faces"], cfg)
    key["emotions"] = {k: v for k, v in key["emotions"].items() if k in model.keyed}
    _own_options(key, detector, cfg)
    _own_options(key, model, cfg)
    files = [*detector.files_for(cfg), *model.files_for(cfg)]
    names = [*BASE_PACKAGES, *detector.packages_for(cfg), *model.packages_for(cfg)]
    hashes = model_hashes()
    missing = [f for f in files if f not in hashes]
    if missing:
        raise KeyError(f"model file(s) {missing} of {cfg.faces.detector!r} / "
                       f"{cfg.emotions.model!r} have no recorded sha256 in videmo.models")
    key["extract_version"] = config_keys.EXTRACT_VERSION
    key["model_sha256"] = {f: hashes[f] for f in files}
    key["packages"] = {n: runtime.package_version(*DISTRIBUTIONS.get(n, (n,))) for n in names}
    return key


def parts_loaded() -> list[tuple[str, str, str, list[str], list[str]]]:
    """(option, part, its doc, model files, packages) of every registered detector and frame
    model at its default options, read from the specs: the rows of :func:`parts_markdown` and
    of ``videmo config --template``'s lists (the config reads them by reference)."""
    from videmo.config import from_dict
    from videmo.extract.features.frame_models import FRAME_MODELS

    parts = [("faces.detector", n, detector_spec(n), {"faces": {"detector": n}})
             for n in DETECTORS]
    parts += [("emotions.model", n, frame_model_spec(n), {"emotions": {"model": n}})
              for n in FRAME_MODELS]
    rows = []
    for option, name, spec, data in parts:
        cfg = from_dict(data)
        rows.append((option, name, spec.doc, list(spec.files_for(cfg)),
                     list(spec.packages_for(cfg))))
    return rows


def parts_markdown() -> str:
    """MODELS.md's table of what each registered detector and frame model loads, with its
    default options, read from the specs (a test keeps MODELS.md in step)."""
    rows = ["| option | part | what it is | model files (default options) | packages |",
            "|---|---|---|---|---|"]
    for option, name, doc, files, packages in parts_loaded():
        shown = ", ".join(f"`{f}`" for f in files) or "none"
        rows.append(f"| `{option}` | `{name}` | {doc} | {shown} | "
                    f"{', '.join(packages) or 'OpenCV only'} |")
    return "\n".join(rows) + "\n"
