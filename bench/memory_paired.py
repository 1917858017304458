"""Peak memory of a 1-minute and a 60-minute recording, this checkout and a baseline's src.

    python bench/memory_paired.py [--baseline-src DIR]

bench/run.py's memory rows (its loops of woman2.mp4 under bench/.work/inputs/memory, made by
``python bench/run.py ... --only memory``; every 200th frame, one core), run from this checkout
and, with ``--baseline-src``, from another checkout's ``src`` on the same inputs: whether a
change moved the growth with the recording's length or only the base. JSON to stdout and
``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as h  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-src")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    h.byte_compile(*([args.baseline_src] if args.baseline_src else []))
    inputs = h.WORK / "inputs" / "memory"
    out = {"machine": h.machine(), "rows": {}}
    for code, src in [("new", None)] + ([("base", args.baseline_src)] if args.baseline_src
                                        else []):
        for name, f in (("1m", inputs / "loop1m.mp4"), ("60m", inputs / "loop60m.mp4")):
            r = h.videmo(f"memory_paired_{name}_{code}", f, every_n=200, src=src)
            out["rows"][f"{code} {name}"] = {"peak_rss_mb": r["peak_rss_mb"],
                                             "cpu_s": round(r["cpu_s"], 2),
                                             "frames": r["frames_sampled"]}
            print(code, name, out["rows"][f"{code} {name}"], flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
