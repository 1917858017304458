"""--jobs 1 against --jobs 2 on the 15-minute 720p recording that bench/long_recording.py made
(bench/.work/long/rec15m/), alternating, ``--pairs`` pairs; for a quiet machine.

    python bench/long_jobs_pair.py --pairs 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import long_recording as lr  # noqa: E402
import run as harness  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--detector", default="mediapipe")
    args = p.parse_args()
    rec15 = lr.WORK / "rec15m" / "debate15m.mp4"
    rows: dict[str, list] = {}
    for i in range(args.pairs):
        for name, jobs in (("jobs1_15m", 1), ("jobs2_15m", 2)):
            r = lr.extract(name, rec15, jobs, args.detector, 300.0)
            rows.setdefault(name, []).append(r)
            print(name, i, r["wall_s"], r["cpu_s"], r["peak_rss_mb"], flush=True)
    out = {"machine": harness.machine(), "input": harness.facts(rec15), "rows": rows}
    path = Path(__file__).resolve().parent / "results" / "long-jobs-15m.json"
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
