"""report.html, comparison.html, the bootstrap intervals and observer events in the report, on
hand-made runs (no video is read; tests/test_report.py's fake_run). The pages in a real browser:
tests/test_report_browser.py."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.annotate import ANNOTATIONS_CSV
from videmo.evaluate.metrics import CI_KEYS, bootstrap_intervals, evaluate
from videmo.evaluate.stats import weighted_rates
from videmo.report import compare
from videmo.report.build import build_report
from videmo.report.html import CSP, anchor

from .test_report import UNFINISHED, fake_run

URL = re.compile(r"^\s*([a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host


class Links(HTMLParser):
    """Every src and href of a page, and the tags that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.csp: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta" and ("http-equiv", "Content-Security-Policy") in attrs:
            self.csp = dict(attrs)["content"]
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "data", "poster"):
                self.refs.append((tag, name, value or ""))
            if name == "id" and value:
                self.ids.add(value)


def links(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def assert_offline(path: Path) -> Links:
    """No http(s) or protocol-relative URL in any src / href; images are data: URIs; in-page
    anchors point at elements that exist."""
    page = links(path)
    text = path.read_text(encoding="utf-8")
    bad = [r for r in page.refs if URL.match(r[2]) or r[2].lower().startswith("http")]
    assert bad == [], bad
    assert not re.search(r"https?://", text), "a URL in the page's text"
    assert all(v.startswith("data:image/png;base64,") for t, n, v in page.refs if n == "src")
    assert page.csp == CSP  # the browser may load nothing else
    for _, name, value in page.refs:
        if name == "href" and value.startswith("#"):
            assert value[1:] in page.ids, f"dangling anchor {value}"
    return page


# ------------------------------------------------------------------ bootstrap intervals
def random_clips(n: int, seed: int, hit: float = 0.6) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    golden = list(rng.choice(schema.CLASSES, n))
    values = [*schema.CLASSES, schema.NO_FACE, schema.FAILED]
    predicted = [g if rng.random() < hit else str(rng.choice(values)) for g in golden]
    return predicted, [str(g) for g in golden]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_scores_equal_scikit_learn_on_the_sample_itself(seed):
    predicted, golden = random_clips(57, seed)
    m = evaluate(predicted, golden)
    true = np.asarray(golden, dtype=object)
    pred = np.asarray(predicted, dtype=object)
    acc, f1 = weighted_rates(true, pred, np.ones((1, len(true))))
    assert acc[0] == pytest.approx(m["accuracy"]) and f1[0] == pytest.approx(m["macro_f1"])
    # a class nobody predicted and nobody labelled has F1 0, as in scikit-learn
    pos = np.asarray([schema.POSITIVE] * 2, dtype=object)
    acc, f1 = weighted_rates(pos, pos, np.ones((1, 2)))
    assert (acc[0], f1[0]) == (1.0, pytest.approx(1 / 3))
    assert evaluate([schema.POSITIVE] * 2, [schema.POSITIVE] * 2)["macro_f1"] == \
        pytest.approx(1 / 3)


def test_intervals_bracket_the_estimate_repeat_and_shrink_with_more_clips():
    predicted, golden = random_clips(400, 7, hit=0.5)
    m = evaluate(predicted, golden)
    assert m["accuracy_ci_low"] <= m["accuracy"] <= m["accuracy_ci_high"]
    assert m["macro_f1_ci_low"] <= m["macro_f1"] <= m["macro_f1_ci_high"]
    assert evaluate(predicted, golden) == m  # a fixed seed: the same report, the same interval
    # a proportion near 0.6 over 400 clips: about +- 1.96 * sqrt(p (1 - p) / n) = +- 0.048
    p, n = m["accuracy"], 400
    half = 1.96 * (p * (1 - p) / n) ** 0.5
    assert m["accuracy_ci_high"] - m["accuracy_ci_low"] == pytest.approx(2 * half, rel=0.15)
    small = evaluate(predicted[:40], golden[:40])
    assert small["accuracy_ci_high"] - small["accuracy_ci_low"] > \
        2 * (m["accuracy_ci_high"] - m["accuracy_ci_low"])
    other = bootstrap_intervals([p for p, g in zip(predicted, golden, strict=True)], golden,
                                seed=1)
    assert other != {k: m[k] for k in CI_KEYS}  # the seed is what makes it repeat


def test_intervals_of_perfect_and_unlabelled_clips():
    perfect = evaluate([schema.POSITIVE, schema.NEGATIVE, schema.NEUTRAL] * 5,
                       [schema.POSITIVE, schema.NEGATIVE, schema.NEUTRAL] * 5)
    assert (perfect["accuracy_ci_low"], perfect["accuracy_ci_high"]) == (1.0, 1.0)
    assert perfect["macro_f1_ci_high"] == 1.0
    none = evaluate([schema.POSITIVE, schema.NO_FACE], [None, None])
    assert {k: none[k] for k in CI_KEYS} == dict.fromkeys(CI_KEYS)


def test_ci_keys_in_metrics_json_and_groups_csv_bracket_the_accuracy(tmp_path):
    run, cfg = fake_run(tmp_path)
    build_report(run, cfg)
    out = run.path / "report"
    metrics = json.loads((out / "metrics.json").read_text())
    for m in [metrics["overall"], *metrics["groups"].values()]:
        assert set(CI_KEYS) <= set(m)
        assert m["accuracy_ci_low"] <= m["accuracy"] <= m["accuracy_ci_high"]
        assert m["macro_f1_ci_low"] <= m["macro_f1"] <= m["macro_f1_ci_high"]
    groups = pd.read_csv(out / "groups.csv").set_index(schema.GROUP)
    assert groups.loc["b", "accuracy_ci_high"] == 0.0  # every b_* clip is wrong
    assert "95% bootstrap intervals (1000 resamples of clips, seed 0)" in \
        (out / "summary.txt").read_text()


# ------------------------------------------------------------------ report.html
def test_report_html_is_offline_and_shows_every_clip_with_its_reason(tmp_path):
    clips = {**UNFINISHED, "a_<b>&3": UNFINISHED["a_2"]}  # markup in a clip id stays text
    run, cfg = fake_run(tmp_path, clips=clips, figures=True)
    rep = build_report(run, cfg)
    page = rep.out_dir / "report.html"
    found = assert_offline(page)
    text = page.read_text(encoding="utf-8")
    assert "a_&lt;b&gt;&amp;3" in text and "a_<b>" not in text
    for cid in clips:  # a row per clip of the corpus, done or not
        assert f'data-clip="{html.escape(cid)}"' in text
    assert "cannot decode: moov atom not found" in text  # the failed clip's reason
    assert 'data-status="not_extracted"' in text and "not complete: 3 of 6" in text
    # done clips with frames have a timeline (linked); failed ones have none
    assert anchor("a_1") in found.ids and anchor("b_1") not in found.ids
    assert f'href="#{anchor("a_1")}"' in text and f'href="#{anchor("b_1")}"' not in text
    # the figures are in the page, not beside it
    assert text.count("data:image/png;base64,") == len(rep.figures.timelines) + \
        len(rep.figures.groups) + 1
    assert "macro-F1 95% CI" in text
    o = rep.metrics.overall
    assert f"95% CI {o['accuracy_ci_low']:.1%} - {o['accuracy_ci_high']:.1%}" in text


def test_report_html_without_labels_or_figures(tmp_path):
    run, cfg = fake_run(tmp_path, labels=None)
    rep = build_report(run, cfg)
    assert_offline(rep.out_dir / "report.html")
    text = (rep.out_dir / "report.html").read_text()
    assert "No golden labels" in text and "Figures are off" in text
    assert "data:image" not in text


# ------------------------------------------------------------------ observer events
def annotate(run_path: Path, rows: list[tuple[str, str, str, int]]) -> None:
    """RUN/annotations.csv as the annotation server writes it (its AnnotationLog)."""
    from videmo.annotate.server import AnnotationLog, Event

    log = AnnotationLog(run_path / ANNOTATIONS_CSV)
    for observer, clip, button, ms in rows:
        log.append(Event(observer, clip, button, ms, 1_700_000_000_000 + ms))


# a_1's frames are at 0, 0.667 and 1.333 s, all happy: tolerance 0.333 s
EVENTS = [("alice", "a_1", "happy", 650),  # frame 20: happy, agrees
          ("alice", "a_1", "angry", 1300),  # frame 40: happy, disagrees
          ("bob", "a_1", "laughing", 100),  # not an emotion: kept, not compared
          ("bob", "a_1", "sad", 5000),  # past the last frame: unmatched
          ("bob", "b_1", "fear", 300)]  # a failed clip: no frames, unmatched


def test_observer_events_are_merged_counted_and_shown(tmp_path):
    run, cfg = fake_run(tmp_path, figures=True, timeline_clips=0)
    annotate(run.path, EVENTS)
    rep = build_report(run, cfg)
    out = rep.out_dir
    merged = pd.read_csv(out / "annotations_merged.csv")
    assert len(merged) == 5 and list(merged[schema.MATCHED]) == [True, True, True, False, False]
    assert list(merged[schema.FRAME_INDEX].iloc[:3]) == [20, 40, 0]
    oa = json.loads((out / "metrics.json").read_text())["observer_agreement"]
    assert oa["events"] == 5 and oa["observers"] == ["alice", "bob"]
    assert oa["overall"] == {"emotion_events": 4, "matched": 2, "with_face": 2, "agree": 1,
                             "agreement": 0.5}
    assert type(oa["overall"]["agree"]) is int  # a count, not 1.0
    assert oa["clips"]["a_1"]["agreement"] == 0.5 and oa["clips"]["b_1"]["matched"] == 0
    assert oa["clips"]["b_1"]["agreement"] is None
    assert oa["by_observer"]["alice"]["agree"] == 1 and oa["by_observer"]["bob"]["with_face"] == 0
    assert "observer events: 5 from annotations.csv (2 observer(s)); emotion events 4, matched " \
        "to a frame 2, with a face 2, agreeing with the predicted emotion 1" in rep.summary()
    assert "agreement 50.0%" in (out / "summary.txt").read_text()
    # timeline_clips 0, but the annotated clip with frames gets its timeline, events marked
    assert list(rep.figures.timelines) == ["a_1"]
    page = assert_offline(out / "report.html")
    text = (out / "report.html").read_text()
    assert "events-" + anchor("a_1")[len("timeline-"):] in page.ids
    for button in ("happy", "angry", "laughing", "sad"):
        assert f'<td data-sort="{button}">{button}</td>' in text
    assert 'href="annotations_merged.csv"' in text  # a file beside the page
    assert 'data-metric="observer agreement"' in text and "50.0%" in text


def test_timeline_marks_the_events(tmp_path):
    """The same timeline with and without events differs (lines drawn), and events after the
    last frame widen the axis rather than fall off it."""
    from videmo.extract.pipeline import frame_table
    from videmo.report import figures

    from .test_report import HAPPY, rows_for

    rows = frame_table(rows_for("a", [(0, HAPPY), (20, HAPPY), (40, HAPPY)])).to_pandas()
    events = pd.DataFrame({schema.OBSERVER: ["x", "x"], schema.BUTTON: ["happy", "applause"],
                           schema.MEDIA_MS: [500, 3000]})
    plain = figures.timeline("a", rows, "Pos", None, tmp_path / "plain.png")
    marked = figures.timeline("a", rows, "Pos", None, tmp_path / "marked.png", events=events)
    assert plain.read_bytes() != marked.read_bytes()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1.33], [0, 1])
    figures._mark_events(ax, events)
    assert ax.get_xlim()[1] > 3.0 and len(ax.lines) == 3
    plt.close(fig)


def test_an_unreadable_annotations_file_does_not_stop_the_report(tmp_path, caplog):
    run, cfg = fake_run(tmp_path)
    (run.path / ANNOTATIONS_CSV).write_text("who,what\nalice,happy\n")
    rep = build_report(run, cfg)
    oa = rep.metrics.observer_agreement
    assert "missing column(s)" in oa["error"] and oa["file"].endswith(ANNOTATIONS_CSV)
    assert not (rep.out_dir / "annotations_merged.csv").exists()
    assert "observer events:" in (rep.out_dir / "report.html").read_text()
    assert any("observer events not used" in r.getMessage() for r in caplog.records)
    plain = fake_run(tmp_path / "plain")[0]
    assert build_report(plain, plain.config()).metrics.observer_agreement is None


# ------------------------------------------------------------------ comparison.html
def test_comparison_html_is_offline_and_links_each_run(tmp_path):
    runs = []
    for name in ("first", "second"):
        run, cfg = fake_run(tmp_path / name)
        build_report(run, cfg)
        runs.append((run.path, "d", name))
    out = tmp_path / "cmp"
    table = compare.collect(runs, out)
    assert set(CI_KEYS) <= set(table.columns)
    page = assert_offline(out / "comparison.html")
    hrefs = [v for _, n, v in page.refs if n == "href"]
    assert len(hrefs) == 2
    for href, (run_path, _, _) in zip(hrefs, runs, strict=True):
        assert not Path(href).is_absolute()
        assert (out / href).resolve() == (run_path / "report" / "report.html").resolve()
    assert (out / "comparison.png").stat().st_size > 10_000
    csv = pd.read_csv(out / "comparison.csv")
    assert (csv["accuracy_ci_low"] <= csv["accuracy"]).all()
    assert (csv["accuracy"] <= csv["accuracy_ci_high"]).all()
