"""report.html and comparison.html of a real sample run in a real headless Chromium (Debian's).

The sample corpus is extracted once (``videmo run``, every 10th frame, its golden labels, three
timelines); a copy of the run gets observer events written by the annotation server's own log,
and ``videmo report`` merges them. The pages are opened from file:// with no server: what they
show must come from the file itself. See tests/browser.py for the set-up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.report import compare
from videmo.report.html import anchor

from . import browser
from .conftest import SAMPLE, SAMPLE_CLIPS
from .test_report_html import annotate

pytestmark = pytest.mark.browser
browser_tools = browser.browser_tools  # installs chromium, chromium-driver, ffmpeg (a fixture)
driver = browser.driver  # a headless Chromium for the module (a fixture)
WAIT = 20
TIMELINES = 3
FIRST, FIFTH = SAMPLE_CLIPS[0].stem, SAMPLE_CLIPS[4].stem
# observer events on the first clip (2.2 s) and on the fifth, which is past report.timeline_clips
EVENTS = [("alice", FIRST, "happy", 300), ("alice", FIRST, "angry", 1000),
          ("alice", FIRST, "laughing", 1400), ("bob", FIFTH, "neutral", 700)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """``plain``: the sample run; ``observed``: a copy with RUN/annotations.csv, re-reported."""
    tmp = tmp_path_factory.mktemp("report-browser")
    job = tmp / "job.yaml"
    job.write_text(f"corpus: {{paths: ['{SAMPLE}']}}\nsampling: {{every_n: 10}}\n"
                   f"run: {{out: '{tmp / 'run'}'}}\n"
                   f"report: {{labels: '{SAMPLE / 'labels.csv'}', timeline_clips: {TIMELINES}}}\n")
    assert main(["run", str(job), "--no-progress"]) == 0
    observed = tmp / "observed"
    shutil.copytree(tmp / "run", observed)
    shutil.rmtree(observed / "report")
    annotate(observed, EVENTS)
    assert main(["report", str(observed)]) == 0
    return {"plain": tmp / "run", "observed": observed}


def open_page(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    browser.console_errors(driver)  # nothing from a previous page


def visible_clips(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#clips tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.dataset.clip)")


def column(driver, index: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#clips tbody tr')).filter(r => !r.hidden)"
        f".map(r => r.cells[{index}].dataset.sort)")


def heading(driver, name: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//table[@id='clips']//th[button[.='{name}']]")


def test_report_page_opens_offline_without_console_errors(driver, runs):
    page = runs["plain"] / "report" / "report.html"
    driver.get(page.resolve().as_uri())
    assert driver.title == f"videmo report: {runs['plain'].name}"
    assert browser.console_errors(driver) == []
    # everything the page loaded came from the page itself
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(n.startswith("data:") for n in loaded), loaded
    clips = pd.read_csv(runs["plain"] / "report" / "clips.csv")
    assert visible_clips(driver) == list(clips[schema.FILENAME])
    assert driver.find_element("id", "clip-count").text == "6 of 6 clips"
    tiles = {e.get_attribute("data-count"): e.find_element("tag name", "dd").text
             for e in driver.find_elements("css selector", "[data-count]")}
    assert (tiles["clips"], tiles["done"], tiles["failed"]) == ("6", "6", "0")
    acc = driver.find_element("css selector", "[data-metric='accuracy']").text
    assert "95% CI" in acc


def test_clip_table_filters_and_sorts(driver, runs):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    report = runs["plain"] / "report"
    clips = pd.read_csv(report / "clips.csv")
    open_page(driver, report / "report.html")
    box = driver.find_element("id", "clip-filter")
    box.send_keys("hap")  # typed, case-insensitive, any cell
    assert visible_clips(driver) == ["1001_DFA_HAP_XX"]
    assert driver.find_element("id", "clip-count").text == "1 of 6 clips"
    box.send_keys(Keys.BACKSPACE * 3, "neutral")  # golden or predicted neutral
    hit = clips[(clips[schema.GOLDEN] == "Neut") | (clips[schema.PREDICT] == "Neut")]
    assert visible_clips(driver) == list(hit[schema.FILENAME])
    box.clear()
    box.send_keys(" ", Keys.BACKSPACE)  # an input event: the filter runs on the empty text
    assert len(visible_clips(driver)) == 6
    Select(driver.find_element("id", "clip-show")).select_by_visible_text("wrong")
    wrong = clips[~clips[schema.CORRECT]]
    assert visible_clips(driver) == list(wrong[schema.FILENAME]) and len(wrong) > 0
    Select(driver.find_element("id", "clip-show")).select_by_visible_text("all clips")
    assert len(visible_clips(driver)) == 6
    # sorting: real clicks on the headings
    heading(driver, "neut").find_element("tag name", "button").click()
    assert heading(driver, "neut").get_attribute("aria-sort") == "ascending"
    neut = [int(v) for v in column(driver, 7)]
    assert neut == sorted(clips["neut"])
    heading(driver, "neut").find_element("tag name", "button").click()
    assert heading(driver, "neut").get_attribute("aria-sort") == "descending"
    assert [int(v) for v in column(driver, 7)] == sorted(clips["neut"], reverse=True)
    heading(driver, "clip").find_element("tag name", "button").click()
    assert visible_clips(driver) == sorted(clips[schema.FILENAME])
    heading(driver, "clip").find_element("tag name", "button").click()
    assert visible_clips(driver) == sorted(clips[schema.FILENAME], reverse=True)
    box.send_keys("negative")  # the filter applies to the re-ordered rows, keeping their order
    hit = clips[(clips[schema.GOLDEN] == "Neg") | (clips[schema.PREDICT] == "Neg")]
    assert visible_clips(driver) == sorted(hit[schema.FILENAME], reverse=True)
    assert browser.console_errors(driver) == []


def test_a_clip_links_to_its_timeline_and_the_image_loads(driver, runs):
    from selenium.webdriver.common.by import By

    open_page(driver, runs["plain"] / "report" / "report.html")
    link = driver.find_element(By.CSS_SELECTOR, f"#clips tr[data-clip='{FIRST}'] a")
    link.click()
    assert driver.current_url.endswith("#" + anchor(FIRST))
    img = driver.find_element(By.CSS_SELECTOR, f"#{anchor(FIRST)} img")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                 img) > 500
    # clips past report.timeline_clips have no timeline, so no link
    assert driver.find_elements(By.CSS_SELECTOR, f"#clips tr[data-clip='{FIFTH}'] a") == []
    assert len(driver.find_elements(By.CSS_SELECTOR, "article.timeline img")) == TIMELINES
    assert browser.console_errors(driver) == []


def test_the_merged_report_shows_the_observer_events(driver, runs):
    from selenium.webdriver.common.by import By

    open_page(driver, runs["observed"] / "report" / "report.html")
    assert driver.title == "videmo report: observed"  # the run directory, wherever it moved
    assert driver.find_element(By.ID, "observers").is_displayed()
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{anchor(FIRST)} table tbody tr")
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    assert [(c[0], c[1], c[2]) for c in cells] == [("alice", "happy", "0.30"),
                                                    ("alice", "angry", "1.00"),
                                                    ("alice", "laughing", "1.40")]
    assert all(c[4] == "yes" for c in cells)  # each matched to a sampled frame
    # the fifth clip is past report.timeline_clips, but its events give it a timeline
    link = driver.find_element(By.CSS_SELECTOR, f"#clips tr[data-clip='{FIFTH}'] a")
    link.click()
    img = driver.find_element(By.CSS_SELECTOR, f"#{anchor(FIFTH)} img")
    assert driver.execute_script("return arguments[0].naturalWidth", img) > 500
    events = driver.find_element(By.CSS_SELECTOR, f"#clips tr[data-clip='{FIRST}'] td:last-child")
    assert events.text == "3"
    agreement = driver.find_element(By.CSS_SELECTOR, "[data-metric='observer agreement'] dd")
    assert agreement.text.endswith("%")
    assert browser.console_errors(driver) == []


def test_comparison_page_links_each_run_report(driver, runs, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "cmp"
    compare.collect([(runs["plain"], None, "plain"), (runs["observed"], None, "observed")], out)
    open_page(driver, out / "comparison.html")
    assert browser.console_errors(driver) == []
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#comparison tbody a")]
    assert names == ["plain", "observed"]
    driver.find_element(By.LINK_TEXT, "observed").click()
    assert driver.find_element(By.ID, "observers").is_displayed()
    assert browser.console_errors(driver) == []
