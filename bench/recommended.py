"""The recommended settings against the decode floor, and where their time goes (issue 32, item 3).

    python bench/recommended.py --tv /tmp/tv/Video_2_30s.mp4 --repeats 5

The 720p TV scene (bench/run.py's docstring says how to cut it) three times as three clips, as
bench/run.py's fast-path row: every row a whole fresh process pinned to one CPU, ``run.threads:
1``, every 20th frame, CPU time (user + system) min / median / max of ``--repeats`` runs, the
rows' runs interleaved (one of each row, then the next round):

- ``floor``: grab every frame, retrieve every 20th, nothing else (bench/run.py's floor);
- ``recommended``: configs/recommended.yaml's extraction (its ``faces`` and ``emotions``);
- ``yunet_full``: YuNet at the frame's own size (``faces.yunet.scale: 1``), pixels_real;
- ``yunet_half_distilled``: the recommended detector with pixels_distilled;
- ``mtcnn``: MTCNN with pixels_real (the recommendation until 2026-12-07);
- ``fast``: BlazeFace short range with fer (the fast path, for reference);
- ``recommended_baseline`` (with ``--baseline-src DIR``): the recommended row run from another
  checkout's ``src``, in the same rounds (what a change of the code saves).

Besides each row's medians over the floor's, the ratio of each round's run to the same round's
floor (``vs_floor_rounds``): the VM's speed changes by 20-50 % within an hour, on both alike.

Then one cProfile of the recommended extraction of one clip (``--profile``, written to
bench/profiles/recommended-tv720.txt): where the time goes. Writes bench/results/
recommended-DATE[-TAG].json; the markdown table is printed for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402


def recommended() -> dict:
    """configs/recommended.yaml's detector, its other ``faces`` options and ``emotions``."""
    cfg = yaml.safe_load((harness.REPO / "configs" / "recommended.yaml").read_text())
    faces = dict(cfg.get("faces") or {})
    return {"detector": faces.pop("detector"), "faces": faces,
            "emotions": dict(cfg.get("emotions") or {})}


ROWS = {
    "recommended": recommended(),
    "yunet_full": {"detector": "yunet", "emotions": {"model": "pixels_real"}},
    "yunet_half_distilled": {"detector": "yunet", "faces": {"yunet": {"scale": 0.5}},
                             "emotions": {"model": "pixels_distilled"}},
    "mtcnn": {"detector": "mtcnn", "emotions": {"model": "pixels_real"}},
    "fast": {"detector": "mediapipe", "emotions": {"model": "fer"}},
}


def profile(tv: Path, out: Path) -> None:
    """cProfile of ``videmo extract`` with the recommended settings on one clip, top 40 by
    cumulative and by own time."""
    cmd, _ = harness.videmo_cmd("profile_recommended", tv, **ROWS["recommended"])
    prof = harness.WORK / "recommended.prof"
    harness.timed([harness.PY, "-m", "cProfile", "-o", str(prof), *cmd[1:]])
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(str(prof), stream=text)
    text.write(f"videmo extract, recommended settings ({json.dumps(ROWS['recommended'])}), "
               f"{tv.name}, one core, run.threads 1\n\n## by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(40)
    text.write("\n## by own time\n")
    stats.sort_stats("tottime").print_stats(30)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tv", required=True, type=Path, help="the 30 s 720p TV scene")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--profile", action="store_true", help="also profile one recommended run")
    ap.add_argument("--tag", default="", help="results file recommended-DATE-TAG.json")
    ap.add_argument("--baseline-src", help="another checkout's src: the recommended row with "
                    "it too, in the same rounds (row recommended_baseline)")
    args = ap.parse_args()
    if len(harness.ALL_CPUS) > 1:  # keep the memory poller off the pinned CPU
        import os

        os.sched_setaffinity(0, harness.ALL_CPUS - {harness.PIN_CPU})
    machine = {**harness.machine(), "bytecode": harness.byte_compile(
        *([args.baseline_src] if args.baseline_src else []))}
    tv3 = harness.links("tv3", [args.tv] * 3)
    rows = {"floor": lambda: harness._floor_many(tv3)}
    for name in args.rows:
        rows[name] = (lambda name=name: harness.videmo(f"{name}_tv3", tv3, **ROWS[name]))
    if args.baseline_src:
        ROWS["recommended_baseline"] = ROWS["recommended"]
        rows["recommended_baseline"] = lambda: harness.videmo(
            "recommended_baseline_tv3", tv3, src=args.baseline_src, **ROWS["recommended"])
        args.rows = [*args.rows, "recommended_baseline"]
    runs = harness.interleaved(args.repeats, rows)
    floor = runs["floor"]["cpu_s"]["median"]
    date = dt.date.today().isoformat()
    res = {"date": date, "machine": machine, "repeats": args.repeats,
           "command": "python bench/recommended.py " + " ".join(sys.argv[1:]),
           "input": {"tv3": "3 x " + args.tv.name, **harness.facts(args.tv)}, "runs": runs,
           "vs_floor": {n: round(runs[n]["cpu_s"]["median"] / floor, 2) for n in args.rows},
           # each round's row over the same round's floor: the machine's speed, which varies
           # by 20-50 % within the hour here, falls on both alike
           "vs_floor_rounds": {n: harness.stats([a / b for a, b in zip(
               runs[n]["cpu_s_each"], runs["floor"]["cpu_s_each"], strict=True)])
               for n in args.rows}}
    path = harness.RESULTS / f"recommended-{date}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"| row | settings | CPU s (min / median / max of {args.repeats}) | frames | "
          "x floor (medians) | x floor, each round (min / median / max) |\n"
          "|---|---|---|---|---|---|")
    print(f"| floor | grab all, retrieve every 20th | {harness.fmt(runs['floor']['cpu_s'])} | "
          f"{runs['floor']['frames_sampled']} | 1.00 | |")
    for n in args.rows:
        print(f"| {n} | {json.dumps(ROWS[n])} | {harness.fmt(runs[n]['cpu_s'])} | "
              f"{runs[n]['frames_sampled']} | {res['vs_floor'][n]} | "
              f"{harness.fmt(res['vs_floor_rounds'][n])} |")
    print(f"load before: {machine['load_before']}; -> {path}")
    if args.profile:
        out = harness.REPO / "bench" / "profiles" / "recommended-tv720.txt"
        profile(args.tv, out)
        print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
