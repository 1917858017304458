"""A real headless Chromium for the browser tests: Debian's chromium + chromium-driver.

scripts/browser-setup.sh installs them (and ffmpeg) with apt-get when missing, as the SLURM tests
install SLURM. Selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium, so Selenium
Manager never runs and nothing is downloaded; :func:`chromium` makes sure of it. Without root
and apt the tests skip with the reason; under CI (CI=true) that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import IN_CI, REPO, one_installer

SCRIPT = REPO / "scripts" / "browser-setup.sh"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def tools_present() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file() and bool(shutil.which("ffmpeg"))


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI must run the browser tests, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_tools() -> None:
    """chromium, chromedriver and ffmpeg, installed by scripts/browser-setup.sh when missing."""
    if tools_present():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        _unavailable("chromium, chromium-driver and ffmpeg are missing and need root + apt-get: "
                     f"sudo bash {SCRIPT}")
    with one_installer():
        if tools_present():  # the other worker installed them meanwhile
            return
        result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                                timeout=900, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not tools_present():
        _unavailable(f"{SCRIPT} failed ({result.returncode}): {result.stderr[-2000:]}")


@pytest.fixture(scope="session")
def ffmpeg_tool() -> None:
    """ffmpeg (for tests that need no browser), installed with the browser when missing."""
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        _unavailable(f"ffmpeg is missing and needs root + apt-get: sudo bash {SCRIPT}")
    with one_installer():
        if shutil.which("ffmpeg") and shutil.which("ffprobe"):
            return
        result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                                timeout=900, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not shutil.which("ffmpeg"):
        _unavailable(f"{SCRIPT} failed ({result.returncode}): {result.stderr[-2000:]}")


PAGE_LOAD_WAIT = 20  # seconds; a clip is transcoded when the page first asks for it


@pytest.fixture(scope="module")
def driver(browser_tools):
    """A headless Chromium for one test module (see :func:`chromium`)."""
    mp = pytest.MonkeyPatch()
    d = chromium(mp)
    d.set_page_load_timeout(PAGE_LOAD_WAIT)
    try:
        yield d
    finally:
        d.quit()
        mp.undo()


def chromium(monkeypatch_manager: pytest.MonkeyPatch):
    """A headless Chromium WebDriver from the distribution's binaries; Selenium Manager barred."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.selenium_manager import SeleniumManager
    except ImportError:
        _unavailable("selenium is not installed: pip install -e '.[test]'")

    def refuse(*args, **kwargs):
        raise AssertionError("Selenium Manager must not run (it would download a driver)")

    monkeypatch_manager.setattr(SeleniumManager, "binary_paths", refuse)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--mute-audio", "--autoplay-policy=no-user-gesture-required",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--window-size=1100,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def console_errors(driver) -> list[str]:
    """SEVERE entries of the browser console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
