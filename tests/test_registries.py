"""The names of pluggable parts live in one registry each; the config's choices, its errors and
docs/config.md read them from there, and listing them imports no model library."""

from __future__ import annotations

import subprocess
import sys

import pytest

from videmo import config as config_mod
from videmo.config import ConfigError
from videmo.evaluate.learn.base import LEARNERS, learner_names
from videmo.evaluate.vote import AGGREGATES
from videmo.extract.detectors import DETECTORS
from videmo.extract.features import EXTRACTORS
from videmo.extract.features.frame_models import FRAME_MODELS, mesh_frame_models
from videmo.registry import Registry
from videmo.train import TRAIN_MODELS

# (config key, registry, the shipped names in their order)
SHIPPED = [
    ("faces.detector", DETECTORS, ("haar", "mtcnn", "mediapipe", "blazeface_full", "yunet")),
    ("emotions.model", FRAME_MODELS, ("fer", "pixels", "pixels_real", "pixels_distilled",
                                         "blendshapes", "landmarks")),
    ("report.aggregate", AGGREGATES,
     ("majority", "mean", "interval", "expressive", "confident", "peak")),
    ("learn.classifiers", LEARNERS, ("logistic", "gboost", "lstm")),
    ("features", EXTRACTORS, ("emotions", "mesh")),
    ("train.models", TRAIN_MODELS, ("blend_lstm", "blend_mlp", "blend_gboost",
                                    "land_cnn_procrustes", "land_cnn_minmax", "pixel_vgg",
                                    "pixel_vgg_48", "pixel_vgg_64")),
]


@pytest.mark.parametrize(("key", "registry", "names"), SHIPPED, ids=[k for k, *_ in SHIPPED])
def test_config_choices_are_the_registry_names(key, registry, names):
    assert registry.names() == names
    tp = config_mod.option_type(key.split("."))
    shown = config_mod.type_name(tp)
    assert all(repr(n) in shown for n in names), shown
    row = next(line for line in config_mod.reference_markdown().splitlines()
               if line.startswith(f"| `{key}` |"))
    assert " \\| ".join(map(repr, names)) in row


def test_a_name_registered_at_run_time_is_a_valid_choice_and_leaves_with_it():
    data = {"faces": {"detector": "bright"}}
    with pytest.raises(ConfigError, match="'faces.detector': 'bright' is not one of"):
        config_mod.from_dict(data)
    DETECTORS.register("bright", lambda cfg, threads: None)
    try:
        assert config_mod.from_dict(data).faces.detector == "bright"
        assert "'bright'" in config_mod.reference_markdown()
    finally:
        DETECTORS.pop("bright")
    with pytest.raises(ConfigError, match=r"did you mean 'haar'\?"):
        config_mod.from_dict({"faces": {"detector": "har"}})


def test_a_list_option_checks_each_item_against_its_registry():
    with pytest.raises(ConfigError, match=r"'learn.classifiers\[1\]': 'lsmt' is not one of "
                                          r".*\(did you mean 'lstm'\?\)"):
        config_mod.from_dict({"learn": {"classifiers": ["logistic", "lsmt"]}})
    cfg = config_mod.apply_overrides({}, ["learn.classifiers=[gboost, lstm]"])
    assert config_mod.from_dict(cfg).learn.classifiers == ["gboost", "lstm"]


def test_learners_are_listed_cheapest_first_and_resolve_to_their_names():
    assert learner_names() == ("logistic", "gboost", "lstm")
    for name in learner_names():
        assert LEARNERS.get(name).name == name


def test_the_trainers_take_their_models_from_the_registry():
    from videmo.train import models, pixels

    assert models.MODELS + pixels.PIXEL_MODELS == TRAIN_MODELS.names()
    assert set(models.KIND.values()) == {"blendshapes", "landmarks"}


def test_the_mesh_frame_models_turn_the_mesh_on():
    assert mesh_frame_models() == ("blendshapes", "landmarks")
    for model in FRAME_MODELS:
        cfg = config_mod.from_dict({"emotions": {"model": model}})
        assert ("mesh" in cfg.features) == (model in mesh_frame_models())


def test_an_unknown_name_is_named_with_a_hint():
    reg = Registry("widget", {"alpha": "json:dumps"})
    assert reg.get("alpha")("x") == '"x"'  # resolved from "module:attr" on first use
    with pytest.raises(KeyError, match=r"unknown widget 'alph' \(did you mean 'alpha'\?\); "
                                       r"known: alpha"):
        reg.get("alph")


def test_checking_a_config_imports_no_model_library():
    code = ("import sys; from videmo import config; "
            "c = config.from_dict({'faces': {'detector': 'mtcnn'}, "
            "'emotions': {'model': 'landmarks'}, 'learn': {'classifiers': ['lstm']}, "
            "'train': {'models': ['pixel_vgg', 'blend_gboost']}}); "
            "config.reference_markdown(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'ai_edge_litert', 'mtcnn', 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
