"""The golden labels file: its forms (separator, BOM, header, columns), its encodings and
spreadsheets, which values count as labels, and how keys find clips."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from videmo import config as config_mod
from videmo import schema
from videmo.cli import main
from videmo.evaluate.labels import (
    LabelsError,
    check_labels,
    golden_labels,
    parse_label,
    read_labels,
)
from videmo.extract.corpus import Clip
from videmo.extract.pipeline import ClipResult, frame_table
from videmo.store import RunDir

from .conftest import SAMPLE, make_config

M = dict(schema.STUDY_MAPPING)
CREMA_ALIASES = {"A": "angry", "D": "disgust", "F": "fear", "H": "happy", "N": "neutral",
                 "S": "sad"}
CREMA_IDS = sorted(p.stem for p in SAMPLE.glob("*.flv"))


def report_options(**report) -> config_mod.ReportConfig:
    return config_mod.from_dict({"report": report}).report


def xlsx_bytes() -> bytes:
    """A workbook as Excel writes it: a zip archive (only its first bytes matter here)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


OLE = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)  # a legacy .xls starts so
IDS = ["biden_58.0", "2019/trump_1", "obama_2"]
TRUMPS = ["2019/trump_1", "2020/trump_1"]

# (name, file name, file bytes, report options, clip ids, golden class per clip or an error regex)
CASES = [
    ("bom-crlf-semicolon", "l.csv",
     "\ufeffFileName;Golden;extra\r\nbiden_58.0.mp4;Neg;x\r\n2019/trump_1;pos;y\r\n".encode(),
     {}, IDS, {"biden_58.0": "negative", "2019/trump_1": "positive"}),
    ("tab", "l.tsv", b"clip\tlabel\nobama_2\thappy\nbiden_58.0\tNeut\n", {}, IDS,
     {"obama_2": "positive", "biden_58.0": "neutral"}),
    ("semicolon-with-commas-in-a-note", "l.csv",
     b"clip;label;note\nobama_2;Neg;hi, there, you\nbiden_58.0;Pos;ok, fine, well\n", {}, IDS,
     {"obama_2": "negative", "biden_58.0": "positive"}),
    ("known-header-names-any-case-and-spacing", "l.csv",
     b"Speaker,Emotion,File Name\nx,sad,obama_2.mp4\n", {}, IDS, {"obama_2": "neutral"}),
    ("no-header-first-two-columns", "l.csv", b"obama_2,happy,x\nbiden_58.0,Neg,y\n", {}, IDS,
     {"obama_2": "positive", "biden_58.0": "negative"}),
    ("chosen-columns-any-header-names", "l.csv",
     b"Rater;Video Name;Rating\nr1;OBAMA_2;neg\n",
     {"labels_clip_column": "video name", "labels_label_column": "RATING"}, IDS,
     {"obama_2": "negative"}),
    ("chosen-label-column-only", "l.csv", b"FileName,VoiceVote,FaceVote\nobama_2,neg,Pos\n",
     {"labels_label_column": "FaceVote"}, IDS, {"obama_2": "positive"}),
    ("videmo-clips-csv-reads-golden-not-predict", "clips.csv",
     b"filename,predict,golden,pos\nobama_2,Pos,Neut,3\nbiden_58.0,Neg,Pos,1\n", {}, IDS,
     {"obama_2": "neutral", "biden_58.0": "positive"}),
    ("utf16-with-bom", "l.txt", "clip\tlabel\nobama_2\tNeg\n".encode("utf-16"), {}, IDS,
     {"obama_2": "negative"}),
    ("emotions-follow-report-mapping", "l.csv", b"obama_2,HAPPY\n",
     {"mapping": {**M, "happy": "neutral"}}, IDS, {"obama_2": "neutral"}),
    ("ids-in-any-case", "l.csv", b"clip,label\nBIDEN_58.0.MP4,neg\n2019/Trump_1,POS\n", {}, IDS,
     {"biden_58.0": "negative", "2019/trump_1": "positive"}),
    ("a-path-picks-the-clip-whose-id-ends-it", "l.csv",
     b"clip,label\n/data/debates/2020/trump_1.mp4,Neg\n", {}, TRUMPS,
     {"2020/trump_1": "negative"}),
    ("aliases-make-N-neutral", "l.csv", b"clip,label\nobama_2,N\nbiden_58.0,p\n",
     {"label_aliases": {"N": "neutral", "P": "Pos"}}, IDS,
     {"obama_2": "neutral", "biden_58.0": "positive"}),
    ("numeric-codes-by-alias", "l.csv", b"clip,label\nobama_2,-1\nbiden_58.0,1\n",
     {"label_aliases": {-1: "negative", 1: "positive"}}, IDS,
     {"obama_2": "negative", "biden_58.0": "positive"}),
    # errors
    ("N-and-P-are-not-labels", "l.csv", b"clip,label\nobama_2,N\nbiden_58.0,P\n", {}, IDS,
     r"2 unknown label values: 'N' \(1 clip: 'obama_2'\); 'P' \(1 clip: 'biden_58.0'\)\. "
     r"Accepted: positive, negative, neutral, Pos, Neg, Neut, Neu, .*report\.label_aliases"),
    ("a-typo-is-not-a-label", "l.csv", b"obama_2,joyful\n", {}, IDS,
     r"unknown label value: 'joyful' \(1 clip: 'obama_2'\)"),
    ("ambiguous-base-name-names-both-clips", "l.csv", b"clip,label\ntrump_1,Pos\n", {}, TRUMPS,
     r"'trump_1' \(line 2\) matches 2019/trump_1, 2020/trump_1"),
    ("latin-1", "l.csv", b"clip,label\nobama_2,Neg\ncaf\xe9,Pos\n", {}, IDS,
     r"l\.csv \(config key 'report\.labels'\) is not UTF-8: byte 0xe9 at position 26 \(line 3\)"
     r".*iconv -f latin1 -t utf-8"),
    ("xlsx-by-extension", "labels.xlsx", b"clip,label\nobama_2,Neg\n", {}, IDS,
     r"labels\.xlsx .*spreadsheet.*save it as CSV"),
    ("xlsx-bytes-named-csv", "labels.csv", xlsx_bytes(), {}, IDS,
     r"labels\.csv .*spreadsheet.*zip.*save it as CSV"),
    ("xls-bytes-named-csv", "labels.csv", OLE, {}, IDS, r"spreadsheet.*xls.*save it as CSV"),
    ("header-shorter-than-rows", "l.csv", b"clip\nobama_2,Neg\n", {}, IDS,
     {"obama_2": "negative"}),
    ("one-column", "l.csv", b"obama_2\nbiden_58.0\n", {}, IDS, r"at least two columns"),
    ("chosen-column-not-in-header", "l.csv", b"clip,label\nobama_2,Neg\n",
     {"labels_label_column": "FaceVote"}, IDS,
     r"config key 'report\.labels_label_column' is 'FaceVote', but labels file .*l\.csv has no "
     r"such column; its header \(comma-separated\): 'clip', 'label'"),
]


@pytest.mark.parametrize(("name", "file_name", "data", "options", "clip_ids", "expected"),
                         CASES, ids=[c[0] for c in CASES])
def test_labels_file(tmp_path, name, file_name, data, options, clip_ids, expected):
    path = tmp_path / file_name
    path.write_bytes(data)
    rc = report_options(**options)
    if isinstance(expected, str):
        with pytest.raises(LabelsError, match=expected):
            golden_labels(path, clip_ids, rc)
    else:
        golden, _ = golden_labels(path, clip_ids, rc)
        assert golden == expected


def test_crema_d_votes_read_with_chosen_columns_and_aliases():
    """CREMA-D's own table writes N for neutral (today it would count as negative)."""
    rc = report_options(labels_clip_column="FileName", labels_label_column="FaceVote",
                        label_aliases=CREMA_ALIASES)
    golden, issues = golden_labels(SAMPLE / "crema_official_summaryTable_1001_DFA.csv",
                                   CREMA_IDS, rc)
    assert golden == {"1001_DFA_NEU_XX": "neutral", "1001_DFA_HAP_XX": "positive",
                      "1001_DFA_SAD_XX": "neutral", "1001_DFA_ANG_XX": "negative",
                      "1001_DFA_FEA_XX": "negative", "1001_DFA_DIS_XX": "negative"}
    assert not issues.any()
    # without aliases the single letters are refused, and the message says which key to set
    with pytest.raises(LabelsError, match=r"'N' \(2 clips: '1001_DFA_NEU_XX', '1001_DFA_SAD_XX'"
                                          r"\).*report\.label_aliases"):
        golden_labels(SAMPLE / "crema_official_summaryTable_1001_DFA.csv", CREMA_IDS,
                      report_options(labels_clip_column="FileName",
                                     labels_label_column="FaceVote"))


def test_unknown_values_message_shows_a_few_and_counts_the_rest(tmp_path):
    rows = [f"c{i},bad{i}" for i in range(8)] + [f"d{i},N" for i in range(5)]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(LabelsError) as err:
        read_labels(tmp_path / "l.csv")
    msg = str(err.value)
    assert "9 unknown label values" in msg and "and 4 more values" in msg
    assert "'bad0' (1 clip: 'c0')" in msg and "'bad5'" not in msg
    # a header we do not know is named as the likely cause
    assert "if line 1 is a header, name its columns in report.labels_clip_column" in msg
    (tmp_path / "l.csv").write_text("\n".join(f"d{i},N" for i in range(5)) + "\n")
    with pytest.raises(LabelsError, match=r"'N' \(5 clips: 'd0', 'd1', 'd2' \+2 more\)"):
        read_labels(tmp_path / "l.csv")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Positive", "positive"), ("POS", "positive"), ("neg", "negative"), ("Negative", "negative"),
     ("Neut", "neutral"), ("neutral", "neutral"), (" Neu ", "neutral"), ("happy", "positive"),
     ("Angry", "negative"), ("sad", "neutral"), ("surprise", "positive"), ("joy", None),
     ("N", None), ("P", None), ("n", None), ("p", None), ("", None)],
)
def test_parse_label(raw, expected):
    assert parse_label(raw, M) == expected


def test_issues_are_reported_by_name_and_fatal_when_strict(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("clip,label\nbiden_58.0.mp4,Neg\n2019/trump_1,pos\nbiden_58.0,Pos\nghost,Neut\n"
                 "obama_2,\n")
    golden, issues = golden_labels(p, ["biden_58.0", "2019/trump_1", "obama_2", "other_3"],
                                   report_options())
    assert golden == {"biden_58.0": "negative", "2019/trump_1": "positive"}
    assert issues.missing == ["obama_2", "other_3"] and issues.extra == ["ghost"]
    assert issues.duplicates == ["biden_58.0"] and issues.conflicting == ["biden_58.0"]
    assert issues.empty == ["obama_2"]
    assert "1 empty: obama_2" in issues.lines()
    with pytest.raises(LabelsError, match=r"labels\.csv does not match the run \(report\."
                                          r"strict_labels: true\): 2 missing: obama_2, other_3"):
        golden_labels(p, ["biden_58.0", "2019/trump_1", "obama_2", "other_3"],
                      report_options(strict_labels=True))


def test_exact_id_wins_over_base_name_and_case(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("clip,label\ntrump_1,Pos\nA,Neg\na,Neut\n")
    golden, issues = golden_labels(p, ["trump_1", "2019/trump_1", "A", "a"], report_options())
    assert golden == {"trump_1": "positive", "A": "negative", "a": "neutral"}
    assert issues.missing == ["2019/trump_1"]


# ---------------------------------------------------------------- check before any work
def test_check_labels_names_the_key_and_the_path(tmp_path):
    assert check_labels(make_config(tmp_path, tmp_path)) is None
    cfg = make_config(tmp_path, tmp_path, report={"labels": "gold/labels.csv"})
    with pytest.raises(LabelsError) as err:
        check_labels(cfg)
    assert str(err.value) == (
        f"labels file {tmp_path / 'gold/labels.csv'} (config key 'report.labels' = "
        f"'gold/labels.csv', relative to the config file's folder) not found")
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold/labels.csv").write_text("clip,label\na,Neg\n")
    labels = check_labels(cfg)
    assert labels is not None and [(r.key, r.label) for r in labels.rows] == [("a", "negative")]
    with pytest.raises(LabelsError, match=r"labels file .*other\.csv \(--labels\) not found"):
        check_labels(cfg, tmp_path / "other.csv")
    cfg = make_config(tmp_path, tmp_path, report={"labels": str(tmp_path / "gold/labels.csv"),
                                                  "labels_clip_column": "video"})
    with pytest.raises(LabelsError, match=r"config key 'report\.labels_clip_column' is 'video', "
                                          r"but labels file .*labels\.csv has no such column; "
                                          r"its header \(comma-separated\): 'clip', 'label'"):
        check_labels(cfg)


@pytest.mark.parametrize(
    ("aliases", "error"),
    [({"N": "nuetral"}, r"'report\.label_aliases\.N': 'nuetral' is not a class or emotion; use "
                        r"one of positive, .*\(did you mean 'neutral'\?\)"),
     ({"Pos": "negative"}, r"'report\.label_aliases\.Pos': 'Pos' is already a label value \(it "
                           r"means positive\)"),
     ({" ": "neutral"}, r"'report\.label_aliases': an empty value"),
     ({"N": "neutral", "n": "negative"}, r"'report\.label_aliases': 'N', 'n' are the same value")],
)
def test_label_aliases_are_validated(aliases, error):
    with pytest.raises(config_mod.ConfigError, match=error):
        report_options(label_aliases=aliases)


# ---------------------------------------------------------------- through `videmo report`
def _synthetic_run(tmp_path: Path, clip_ids: list[str]) -> Path:
    """A run directory with one happy face frame per clip (no video is decoded)."""
    corpus = tmp_path / "corpus"
    cfg = make_config(tmp_path, corpus, report={"figures": False})
    happy = [0.01, 0.01, 0.01, 0.94, 0.01, 0.01, 0.01]
    run = RunDir.prepare(cfg)
    for cid in clip_ids:
        path = corpus / f"{cid}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not decoded")
        rows = frame_table([(cid, 0, 0.0, 1, 0, 10, 10, 50, 50, np.nan, *happy)])
        run.save(ClipResult(Clip(cid, path), schema.DONE, rows, frames_sampled=1,
                            frames_with_face=1), cfg.extract_hash())
    return run.path


@pytest.mark.parametrize(
    ("labels", "message"),
    [("clip,label\n2019/a,Pos\n2019/b,N\n",
      "unknown label value: 'N' (1 clip: '2019/b')"),
     ("clip,label\n2019/a,Pos\nb,Neg\n",
      "'b' (line 3) matches 2019/b, 2020/b")],
)
def test_report_refuses_what_today_is_guessed(tmp_path, capsys, labels, message):
    """Today 'N' counts as negative and the base name b labels 2019/b (the first clip)."""
    run = _synthetic_run(tmp_path, ["2019/a", "2019/b", "2020/b"])
    (tmp_path / "labels.csv").write_text(labels)
    code = main(["report", str(run), "--labels", str(tmp_path / "labels.csv")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (run / "report" / "metrics.json").exists()
