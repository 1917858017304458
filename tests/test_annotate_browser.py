"""The annotation page in a real headless Chromium (Debian's), driven by Selenium.

The page plays the sample corpus's FLV clips (transcoded to WebM by the server); presses made
while a clip plays land in RUN/annotations.csv with increasing media times; a reload shows the
count the server holds; a second observer appends. See tests/browser.py for the set-up.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from videmo import schema as S
from videmo.annotate import ANNOTATIONS_CSV
from videmo.annotate import server as srv

from . import browser
from .conftest import SAMPLE, SAMPLE_CLIPS, make_config

pytestmark = pytest.mark.browser
browser_tools = browser.browser_tools  # installs chromium, chromium-driver, ffmpeg (a fixture)
driver = browser.driver  # a headless Chromium for the module (a fixture)
FIRST, SECOND = SAMPLE_CLIPS[0].stem, SAMPLE_CLIPS[1].stem
WAIT = 20  # seconds; the first clip is transcoded when the page asks for it


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The server on a free port for the whole module (one run directory, one cache)."""
    tmp = tmp_path_factory.mktemp("annotate")
    cfg = make_config(tmp, SAMPLE, annotate={"cache": str(tmp / "cache")})
    server = srv.make_server(cfg, tmp / "run")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.url, tmp / "run"
    finally:
        server.shutdown()
        server.server_close()
        server.app.transcoder.close()
        thread.join(10)


def js(driver, script: str):
    return driver.execute_script(script)


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(
        lambda d: condition(d), message=f"timed out waiting for {what}")


def media_time(driver) -> float:
    return js(driver, "return document.getElementById('video').currentTime")


def rows(run: Path) -> list[dict[str, str]]:
    path = run / ANNOTATIONS_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def set_observer(driver, name: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.ID, "observer")
    field.clear()
    field.send_keys(name, Keys.TAB)  # change event: stored, counts refreshed
    driver.find_element(By.TAG_NAME, "h1").click()  # focus off the field: keys go to the page


def test_page_loads_and_plays_a_clip_without_console_errors(driver, site):
    url, _ = site
    driver.get(url)
    browser.console_errors(driver)  # start clean
    assert driver.find_element("id", "clip-id").text == FIRST
    assert js(driver, "return document.querySelectorAll('button.event').length") == 11
    js(driver, "document.getElementById('video').play()")
    wait_for(driver, lambda d: media_time(d) > 0.3, "the clip to play (currentTime > 0.3 s)")
    assert js(driver, "return document.getElementById('video').error") is None
    assert browser.console_errors(driver) == []


def test_three_presses_land_in_the_csv_and_survive_a_reload(driver, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, run = site
    driver.get(url + "#clip=0")
    wait_for(driver, lambda d: d.find_element(By.ID, "clip-id").text == FIRST, "the first clip")
    set_observer(driver, "alice")
    js(driver, "const v = document.getElementById('video'); v.currentTime = 0; v.play()")
    body = driver.find_element(By.TAG_NAME, "body")
    presses = [(0.25, lambda: body.send_keys("h")),  # keyboard shortcut: happy
               (0.75, lambda: driver.find_element(
                   By.CSS_SELECTOR, "button[data-button='sad']").click()),
               (1.25, lambda: body.send_keys("l"))]  # laughing
    for at, press in presses:
        wait_for(driver, lambda d, at=at: media_time(d) >= at, f"media time {at} s")
        press()
    wait_for(driver, lambda d: d.find_element(By.ID, "count").get_attribute("data-clip") == "3",
             "the page to count 3 saved presses")
    got = rows(run)
    assert [r[S.BUTTON] for r in got] == ["happy", "sad", "laughing"]
    assert {r[S.CLIP_ID] for r in got} == {FIRST} and {r[S.OBSERVER] for r in got} == {"alice"}
    ms = [int(r[S.MEDIA_MS]) for r in got]
    assert ms == sorted(ms) and len(set(ms)) == 3, ms
    assert 250 <= ms[0] and ms[2] < 2400, ms  # within the 2.2 s clip

    driver.refresh()  # the count comes back from the server, not from the page's memory
    wait_for(driver, lambda d: d.find_element(By.ID, "count").get_attribute("data-clip") == "3",
             "the reloaded page to show 3 presses")
    assert driver.find_element(By.ID, "observer").get_attribute("value") == "alice"
    assert "3 on this clip by alice" in driver.find_element(By.ID, "count").text

    set_observer(driver, "bob")  # a second observer appends
    wait_for(driver, lambda d: d.find_element(By.ID, "count").get_attribute("data-clip") == "0",
             "bob's count")
    driver.find_element(By.CSS_SELECTOR, "button[data-button='applause']").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "count").get_attribute("data-total") == "4",
             "4 presses in total")
    got = rows(run)
    assert [r[S.OBSERVER] for r in got] == ["alice"] * 3 + ["bob"]
    assert (run / ANNOTATIONS_CSV).read_text().count(S.OBSERVER + ",") == 1  # one header
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)  # next clip by keyboard
    wait_for(driver, lambda d: d.find_element(By.ID, "clip-id").text == SECOND, "the next clip")
    assert browser.console_errors(driver) == []


def test_the_next_clip_follows_when_one_ends(driver, site):
    from selenium.webdriver.common.by import By

    url, _ = site
    driver.get(url + "#clip=0")
    wait_for(driver, lambda d: d.find_element(By.ID, "clip-id").text == FIRST, "the first clip")
    wait_for(driver, lambda d: js(d, "return document.getElementById('video').readyState") >= 1,
             "the clip's metadata")
    js(driver, "const v = document.getElementById('video'); v.currentTime = v.duration - 0.2; "
               "v.play()")
    wait_for(driver, lambda d: d.find_element(By.ID, "clip-id").text == SECOND,
             "the second clip after the first ended")
    wait_for(driver, lambda d: media_time(d) > 0.2, "the second clip to play")
    assert driver.current_url.endswith("#clip=1")
    assert browser.console_errors(driver) == []


def test_a_segment_plays_from_its_start_to_its_end_and_events_use_the_recordings_clock(
        driver, tmp_path):
    """Issue 21, item 5: with corpus.segments the page seeks to a segment's start, pauses at
    its end (autoadvance off), goes on to the next segment of the same recording, and a press
    is stored with the recording's id and time."""
    from selenium.webdriver.common.by import By

    (tmp_path / "seg.csv").write_text(f"recording,start,end,id\n{FIRST},0.6,1.1,q1\n"
                                      f"{FIRST},1.5,2.0,q2\n")
    cfg = make_config(tmp_path, SAMPLE, annotate={"cache": str(tmp_path / "cache")},
                      corpus={"segments": "seg.csv"})
    server = srv.make_server(cfg, tmp_path / "run")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        driver.get(server.url)
        wait_for(driver, lambda d: d.find_element(By.ID, "clip-id").text.startswith("q1 "),
                 "the first segment")
        js(driver, "document.getElementById('autoadvance').checked = false")
        wait_for(driver, lambda d: abs(media_time(d) - 0.6) < 0.05, "the seek to 0.6 s")
        set_observer(driver, "carol")
        js(driver, "document.getElementById('video').play()")
        wait_for(driver, lambda d: media_time(d) >= 0.8, "media time 0.8 s")
        driver.find_element(By.CSS_SELECTOR, "button[data-button='happy']").click()
        wait_for(driver, lambda d: js(d, "return document.getElementById('video').paused"),
                 "the pause at the segment's end")
        assert 1.1 <= media_time(driver) < 1.5
        wait_for(driver, lambda d: len(rows(tmp_path / "run")) == 1, "the press to be saved")
        got = rows(tmp_path / "run")[0]
        # the recording's time (a segment-relative time would be below 500 ms)
        assert got[S.CLIP_ID] == FIRST and 800 <= int(got[S.MEDIA_MS]) < 1500
        driver.find_element(By.ID, "next").click()
        wait_for(driver, lambda d: d.find_element(By.ID, "clip-id").text.startswith("q2 "),
                 "the second segment")
        wait_for(driver, lambda d: media_time(d) >= 1.5, "the seek to 1.5 s")
        assert browser.console_errors(driver) == []
    finally:
        server.shutdown()
        server.server_close()
        server.app.transcoder.close()
        thread.join(10)
