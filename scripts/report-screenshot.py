"""Take docs/report.png: the report page of a sample run, as the headless Chromium shows it.

    python scripts/report-screenshot.py                 # runs the sample corpus into a temp dir
    python scripts/report-screenshot.py RUN_DIR --out docs/report.png

Uses the browser tests' set-up (tests/browser.py: Debian's chromium + chromedriver, nothing
downloaded; scripts/browser-setup.sh installs them). The sample run has observer events from
the annotation server's own log on its first clip, so the picture shows them. The PNG is reduced
to 256 colours to stay small in the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import browser  # noqa: E402
from tests.conftest import SAMPLE, SAMPLE_CLIPS  # noqa: E402


def sample_run(tmp: Path) -> Path:
    from tests.test_report_html import annotate
    from videmo.cli import main

    job = tmp / "job.yaml"
    job.write_text(f"corpus: {{paths: ['{SAMPLE}']}}\nsampling: {{every_n: 10}}\n"
                   f"run: {{out: '{tmp / 'sample-run'}'}}\n"
                   f"report: {{labels: '{SAMPLE / 'labels.csv'}'}}\n")
    if main(["extract", str(job), "--no-progress"]) != 0:
        raise SystemExit("the sample run failed")
    first = SAMPLE_CLIPS[0].stem
    annotate(tmp / "sample-run", [("alice", first, "happy", 300), ("alice", first, "angry", 1000),
                                  ("bob", first, "laughing", 1400)])
    if main(["report", str(tmp / "sample-run")]) != 0:
        raise SystemExit("the sample report failed")
    return tmp / "sample-run"


def screenshot(page: Path, out: Path, width: int, height: int) -> None:
    mp = pytest.MonkeyPatch()
    driver = browser.chromium(mp)
    try:
        driver.set_window_size(width, height)
        driver.get(page.resolve().as_uri())
        errors = browser.console_errors(driver)
        if errors:
            raise SystemExit(f"console errors on {page}: {errors}")
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        mp.undo()
    Image.open(out).convert("RGB").quantize(256).save(out, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="a run directory with a report (default: the sample)")
    ap.add_argument("--out", default=str(REPO / "docs" / "report.png"))
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=1500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else sample_run(Path(tmp))
        screenshot(run / "report" / "report.html", Path(args.out), args.width, args.height)
    print(f"{args.out}: {Path(args.out).stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
