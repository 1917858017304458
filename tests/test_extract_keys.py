"""The cache keys are pinned: a run directory holds the hash of its config's extract key (and
each side table's), and a clip done under another hash is redone. A key that changes by accident
(a refactor that reorders, adds or drops a part of it) silently reruns every user's corpus, so
today's keys of every shipped config and job variant and of every detector x frame model pair
(with the mesh and the options that enter the key) are kept in tests/data/extract_keys.json.

The package versions are pinned to fake ones here, so the file holds the key's assembly, not
this machine's installs. A change of key that is meant (a new option, EXTRACT_VERSION bumped)
rewrites the file with ``VIDEMO_WRITE_KEYS=1 pytest tests/test_extract_keys.py`` in the same
commit, and the diff shows exactly which keys moved.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import pytest

from videmo import config as config_mod
from videmo.config import key_hash

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "extract_keys.json"

DETECTORS = {
    "haar": {"faces": {"detector": "haar"}},
    "mtcnn": {"faces": {"detector": "mtcnn"}},
    "mtcnn-onet": {"faces": {"detector": "mtcnn", "mtcnn": {"onet": True}}},
    "mtcnn-tensorflow": {"faces": {"detector": "mtcnn", "mtcnn_engine": "tensorflow"}},
    "mediapipe": {"faces": {"detector": "mediapipe"}},
    "blazeface_full": {"faces": {"detector": "blazeface_full"}},
    "blazeface_full-tiles4": {"faces": {"detector": "blazeface_full",
                                        "blazeface_full": {"tiles": 4}}},
    "yunet": {"faces": {"detector": "yunet"}},
    "yunet-scale": {"faces": {"detector": "yunet", "yunet": {"scale": 0.5, "min_score": 0.8}}},
}
MODELS = {
    "fer": {"emotions": {"model": "fer"}},
    "fer-keras": {"emotions": {"model": "fer", "engine": "keras"}},
    "pixels": {"emotions": {"model": "pixels"}},
    "pixels-align-flip": {"emotions": {"model": "pixels", "align": True, "flip": True}},
    "pixels_real": {"emotions": {"model": "pixels_real"}},
    "blendshapes": {"emotions": {"model": "blendshapes"}},
    "landmarks": {"emotions": {"model": "landmarks"}},
}
# options that enter (or stay out of) the key, on top of a pair
VARIANTS = {
    "mesh": {"features": ["emotions", "mesh"]},
    "mesh-presence": {"features": ["emotions", "mesh"], "mesh": {"min_presence": 0.8}},
    "options": {"sampling": {"every_n": 5, "max_frames": 30}, "faces": {
        "select": "all", "max_width": 640, "haar": {"min_size": 40},
        "mtcnn": {"min_confidence": 0.8, "batch_size": 4}, "mediapipe": {"min_score": 0.6},
        "tracks": {"max_gap": 2}}, "emotions": {"batch_size": 8}, "corpus": {
        "include": ["*.mp4"], "image_fps": 25.0}},
}


def _merge(*parts: dict) -> dict:
    out: dict = {}
    for part in parts:
        for section, values in part.items():
            if isinstance(values, dict):
                merged = out.setdefault(section, {})
                for k, v in values.items():
                    if isinstance(v, dict):
                        merged.setdefault(k, {}).update(v)
                    else:
                        merged[k] = v
            else:
                out[section] = values
    return out


def _configs() -> dict[str, config_mod.Config]:
    from videmo.execute.compare import load_job, plan

    out = {}
    for path in sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("jobs/*.yaml")]):
        name = str(path.relative_to(ROOT))
        if path.name.startswith("compare-"):
            for planned in plan(load_job(path)):
                out[f"{name}:{planned.variant.name}"] = planned.cfg
        else:
            out[name] = config_mod.load(path)
    for d, det in DETECTORS.items():
        for m, model in MODELS.items():
            out[f"{d}+{m}"] = config_mod.from_dict(_merge(det, model))
            for v, extra in VARIANTS.items():
                out[f"{d}+{m}+{v}"] = config_mod.from_dict(_merge(det, model, extra))
    return out


def current_keys() -> dict[str, dict]:
    """Each config's extract key, its hash and its side tables' hashes, by a stable name."""
    return {name: {"hash": cfg.extract_hash(),
                   "tables": {t.name: t.cache_hash for t in cfg.feature_tables()},
                   "key": json.loads(json.dumps(cfg.extract_key(), sort_keys=True, default=str))}
            for name, cfg in _configs().items()}


@pytest.fixture
def pinned_versions(monkeypatch):
    """Every installed package's version reads as "<name>-pinned" (the first installed of
    the names given, as :func:`videmo.runtime.package_version` reads them; it caches, so the
    function itself is replaced)."""
    from videmo import runtime

    def package_version(*names: str) -> str:
        for name in names:
            try:
                importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            return f"{name}-pinned"
        return "not installed"

    monkeypatch.setattr(runtime, "package_version", package_version)


def test_every_shipped_and_paired_extract_key_is_as_pinned(pinned_versions):
    keys = current_keys()
    if os.environ.get("VIDEMO_WRITE_KEYS"):
        GOLDEN.write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(keys) == sorted(golden), "the set of pinned configs changed"
    moved = {name for name in golden
             if keys[name]["hash"] != golden[name]["hash"]
             or keys[name]["tables"] != golden[name]["tables"]}
    assert not moved, (f"extract keys moved for {sorted(moved)}; first: "
                       f"{golden[min(moved)]['key']} -> {keys[min(moved)]['key']}")
    assert keys == golden


def test_the_golden_hashes_are_the_hashes_of_the_golden_keys():
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert len(golden) > 100
    assert all(key_hash(entry["key"]) == entry["hash"] for entry in golden.values())
    # the pairs differ where their numbers can: every detector x model pair has its own key
    pairs = {golden[f"{d}+{m}"]["hash"] for d in DETECTORS for m in MODELS}
    assert len(pairs) == len(DETECTORS) * len(MODELS)
    assert golden["haar+fer+mesh"]["hash"] == golden["haar+fer"]["hash"]
    assert golden["haar+fer+mesh"]["tables"]["mesh"] != golden["haar+fer+mesh-presence"][
        "tables"]["mesh"]
