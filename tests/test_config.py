from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from videmo import config as config_mod
from videmo.cli import main
from videmo.config import Config, ConfigError

from .conftest import REPO


def load_text(tmp_path, text: str, overrides=None) -> Config:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return config_mod.load(p, overrides)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sampling:\n  evry_n: 10\n", "unknown config key 'sampling.evry_n' (did you mean "
                                      "'sampling.every_n'?)"),
        ("smapling:\n  every_n: 10\n", "unknown config key 'smapling' (did you mean 'sampling'?)"),
        ("sampling:\n  every_n: ten\n", "config key 'sampling.every_n': expected an integer, "
                                        "got 'ten'"),
        ("sampling:\n  every_n: 0\n", "config key 'sampling.every_n': must be at least 1, got 0"),
        ("sampling:\n  every_n: -3\n", "must be at least 1, got -3"),
        ("sampling:\n  fps: 0\n", "config key 'sampling.fps': must be greater than 0"),
        ("sampling:\n  every_n: true\n", "expected an integer, got True"),
        ("faces:\n  detector: mtcn\n", "config key 'faces.detector': 'mtcn' is not one of "
                                       "'haar' | 'mtcnn' | 'mediapipe' | 'blazeface_full' "
                                       "| 'yunet' (did you mean 'mtcnn'?)"),
        ("faces:\n  haar:\n    scale_factor: 1.0\n", "'faces.haar.scale_factor': must be "
                                                     "greater than 1"),
        ("corpus:\n  paths: 3\n", "config key 'corpus.paths': expected list of string, got 3"),
        ("corpus:\n  paths: [3]\n", "config key 'corpus.paths[0]': expected a string, got 3"),
        ("sampling: [1, 2]\n", "config key 'sampling': expected a mapping"),
        ("sampling:\n  start_s: 5\n  end_s: 2\n", "'sampling.end_s': 2.0 must be after"),
        ("report:\n  mapping: {happy: positive}\n", "'report.mapping': no class for"),
        ("report:\n  mapping: {happy: joyful}\n", "'report.mapping.happy': 'joyful' is not one"),
        ("report:\n  mapping: {hapy: positive}\n", "(did you mean 'happy'?)"),
        ("- just\n- a list\n", "expected a mapping of sections"),
        ("sampling: {every_n: [\n", "is not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    assert message in str(e.value)


def test_defaults_and_types(tmp_path):
    cfg = load_text(tmp_path, "corpus:\n  paths: clips\nsampling:\n  fps: 2\n")
    assert cfg.corpus.paths == ["clips"]  # one string is a list of one
    assert cfg.corpus_paths == [(tmp_path / "clips").resolve()]  # relative to the config file
    assert cfg.sampling.fps == 2.0 and isinstance(cfg.sampling.fps, float)
    assert cfg.sampling.every_n == 20 and cfg.faces.detector == "haar"
    assert cfg.faces.haar.min_size == 50 and cfg.faces.select == "largest"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sampling = None  # type: ignore[misc]


def test_overrides(tmp_path):
    cfg = load_text(tmp_path, "sampling:\n  every_n: 10\n",
                    ["sampling.every_n=5", "faces.detector=mtcnn", "faces.mtcnn.min_size=30",
                     "corpus.paths=[a, b]", "sampling.end_s=null"])
    assert cfg.sampling.every_n == 5
    assert cfg.faces.detector == "mtcnn" and cfg.faces.mtcnn.min_size == 30
    assert cfg.corpus.paths == ["a", "b"] and cfg.sampling.end_s is None
    with pytest.raises(ConfigError, match="did you mean 'faces.detector'"):
        load_text(tmp_path, "", ["faces.detectr=haar"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_text(tmp_path, "", ["faces.detector"])


def test_every_option_has_a_doc():
    options = list(config_mod.iter_options())
    assert len(options) > 25
    for key, _tp, _default, doc in options:
        assert isinstance(doc, str) and len(doc) > 10, f"{key} has no doc"


def test_template_is_valid_and_gives_the_defaults(tmp_path):
    text = config_mod.template()
    data = yaml.safe_load(text)
    cfg = config_mod.from_dict(data)
    assert cfg.to_dict() == Config().to_dict()
    for key, *_ in config_mod.iter_options():
        assert key.rsplit(".", 1)[-1] + ":" in text


def test_template_names_what_each_detector_and_frame_model_loads():
    """Under faces.detector and emotions.model, one comment line per registered part: its model
    files at default options and its packages, from the specs (docs/config.md's table)."""
    from videmo.extract.keys import parts_loaded

    lines = config_mod.template().splitlines()
    detector = next(i for i, line in enumerate(lines) if line.startswith("  detector: "))
    model = next(i for i, line in enumerate(lines) if line.startswith("  model: "))
    assert "  #   mtcnn: mtcnn_pnet.tflite, mtcnn_rnet.tflite; ai-edge-litert" \
        in lines[:detector]
    assert "  #   haar: haarcascade_frontalface_default.xml; OpenCV only" in lines[:detector]
    assert "  #   pixels: pixels.tflite, pixels.json, face_framing.json; ai-edge-litert" \
        in lines[detector:model]
    for option, name, _doc, files, packages in parts_loaded():
        end = detector if option == "faces.detector" else model
        line = next(x for x in lines[:end] if x.startswith(f"  #   {name}: "))
        assert all(f in line for f in files) and all(p in line for p in packages), line


def test_extract_hash_ignores_report_and_run_options(tmp_path):
    a = load_text(tmp_path, "run: {out: x, jobs: 2}\n")
    b = load_text(tmp_path, "run: {out: y}\nreport: {labels: l.csv}\ncorpus: {paths: [z]}\n")
    c = load_text(tmp_path, "sampling: {every_n: 10}\n")
    assert a.extract_hash() == b.extract_hash() != c.extract_hash()


def test_config_reference_in_docs_is_current():
    doc = (REPO / "docs" / "config.md").read_text()
    assert config_mod.reference_markdown() in doc, (
        "docs/config.md is stale: regenerate with `videmo config reference`")


def test_cli_config_errors_exit_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("faces:\n  detectr: haar\n")
    assert main(["extract", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'faces.detectr' (did you mean 'faces.detector'?)" in err
    assert "Traceback" not in err
    assert main(["extract", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["config", "check", str(bad)]) == 2


def test_cli_template_and_check(tmp_path, capsys):
    assert main(["config", "--template"]) == 0
    text = capsys.readouterr().out
    p = tmp_path / "t.yaml"
    p.write_text(text)
    assert main(["config", "check", str(p)]) == 0
    assert "OK" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "videmo", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "extract" in out and "report" in out


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("run.out=2019", ("run", "out"), "2019"),  # a string key takes the text as it is
        ("run.out=runs/a#1", ("run", "out"), "runs/a#1"),  # "#" is not a YAML comment here
        ("run.out='a b'", ("run", "out"), "a b"),  # one quoted scalar is unquoted
        ("report.group_pattern=123", ("report", "group_pattern"), "123"),
        ("report.labels=2019.csv", ("report", "labels"), "2019.csv"),
        ("report.labels=null", ("report", "labels"), None),  # string-or-null: null unsets
        ("report.labels=~", ("report", "labels"), None),
        ("slurm.time=04:00:00", ("slurm", "time"), "04:00:00"),  # not YAML 1.1's 14400
        ("slurm.gpus=1", ("slurm", "gpus"), "1"),
        ("faces.detector=\"mtcnn\"", ("faces", "detector"), "mtcnn"),  # compare jobs quote
        ("sampling.every_n=10", ("sampling", "every_n"), 10),  # typed keys still parse
        ("sampling.fps=2.5", ("sampling", "fps"), 2.5),
        ("sampling.end_s=null", ("sampling", "end_s"), None),
        ("report.figures=false", ("report", "figures"), False),
        ("report.timeline_clips=~", ("report", "timeline_clips"), None),
        ("corpus.paths=[2019, 2020]", ("corpus", "paths"), ["2019", "2020"]),
        ("corpus.paths=2019", ("corpus", "paths"), ["2019"]),
        ("corpus.exclude=a#1", ("corpus", "exclude"), ["a#1"]),
        ("report.balance_shares={positive: 1, negative: 1, neutral: 2}",
         ("report", "balance_shares"), {"positive": 1.0, "negative": 1.0, "neutral": 2.0}),
        ("faces={detector: mtcnn, max_width: 640}", ("faces", "max_width"), 640),
    ],
)
def test_override_values_follow_the_key_type(tmp_path, override, key, expected):
    cfg = load_text(tmp_path, "report: {balance: shares, balance_shares: {positive: 1}}\n",
                    [override])
    value = getattr(getattr(cfg, key[0]), key[1])
    assert value == expected and type(value) is type(expected)


def test_override_errors_still_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="'sampling.every_n': expected an integer, got 'ten'"):
        load_text(tmp_path, "", ["sampling.every_n=ten"])
    with pytest.raises(ConfigError, match="did you mean 'report.labels'"):
        load_text(tmp_path, "", ["report.label=x.csv"])


@pytest.mark.parametrize("out", ["2019", "runs/a#1", "null"])
def test_cli_out_is_a_string(tmp_path, out):
    from videmo.cli import build_parser, load_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("sampling: {every_n: 5}\n")
    for command in ("extract", "run", "submit"):
        args = build_parser().parse_args([command, str(cfg_file), "--out", out])
        assert load_config(args).run.out == out


def test_absolute_makes_every_file_option_absolute(tmp_path):
    """A job that runs elsewhere (a SLURM task, a comparison's variant) reads the config with
    base_dir '/': every file the config names must then still be found."""
    cfg = load_text(tmp_path, "corpus: {paths: [clips], segments: coded.csv}\n"
                              "run: {out: out}\nreport: {labels: labels.csv, out: rep}\n"
                              "annotate: {cache: cache}\n").absolute()
    assert cfg.corpus.paths == [str(tmp_path / "clips")]
    assert cfg.corpus.segments == str(tmp_path / "coded.csv")
    assert cfg.report.labels == str(tmp_path / "labels.csv")
    assert cfg.annotate.cache == str(tmp_path / "cache")
