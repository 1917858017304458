"""``--jobs 2`` against ``--jobs 1`` on one 720p recording of each length (issue 32, item 2).

    python bench/jobs_ratio.py --minutes 3 15 --pairs 5 [--baseline-src DIR]

The recordings are bench/long_recording.py's (``woman2.mp4`` scaled to 1280x720, encoded once,
looped with ffmpeg; under bench/.work/, never committed). Each row is a fresh ``videmo -q
extract --force`` of one recording (every 20th frame, ``faces.detector`` as given, the default
``run.threads`` (a worker's share of the ``--jobs`` cores: one each since ``--jobs N`` means N
cores; before, cores / jobs; ``--threads`` sets it for every row) and ``run.chunk_s``), all
cores allowed, ``--jobs 1`` and
``--jobs 2`` alternating; wall and CPU seconds and peak RSS of the process tree (bench/run.py's
``timed``). ``--baseline-src``: also run another checkout's ``src`` (e.g. ``git archive``
of the previous main) in the same rounds. JSON to bench/results/jobs-ratio.json.

    python bench/jobs_ratio.py --corpus DIR --pairs N [--baseline-src DIR]

The per-clip corpus case instead: a folder of clips (e.g. bench/run.py's ``tv3``, the TV scene
three times) at each checkout's *default* ``run.jobs`` and ``run.threads``, alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import long_recording as lr  # noqa: E402
import run as harness  # noqa: E402


def extract(name: str, video: Path, jobs: int | None, detector: str, src: str | None,
            threads: int | None = None) -> dict:
    """One fresh ``videmo extract`` of ``video``'s folder; ``jobs`` None: run.jobs left out
    (each checkout's default)."""
    run = {"threads": threads, "out": str(lr.WORK / "runs" / name)}
    if jobs is not None:
        run["jobs"] = jobs
    cfg = {"corpus": {"paths": [str(video.parent)]}, "sampling": {"every_n": 20},
           "faces": {"detector": detector}, "run": run}
    path = lr.WORK / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "videmo", "-q", "extract", str(path), "--force",
           "--no-progress"]
    r = harness.timed(cmd, one_core=False, env={"PYTHONPATH": src} if src else None)
    r.pop("stdout")
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="../shared/data/fer-videos/woman2.mp4")
    p.add_argument("--minutes", type=int, nargs="+", default=[3, 15])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--detector", default="haar")
    p.add_argument("--baseline-src", help="another checkout's src/, run in the same rounds")
    p.add_argument("--threads", type=int, default=None,
                   help="run.threads for every row (default: unset)")
    p.add_argument("--out", default=str(harness.REPO / "bench" / "results" / "jobs-ratio.json"))
    p.add_argument("--corpus", type=Path,
                   help="instead: this folder of clips at each checkout's default run.jobs and "
                        "run.threads, --pairs rounds (the per-clip corpus case)")
    args = p.parse_args()
    if args.corpus:
        return defaults(args)
    compiled = harness.byte_compile(*([args.baseline_src] if args.baseline_src else []))
    result = {"machine": {**harness.machine(), "bytecode": compiled},
              "detector": args.detector, "threads": args.threads,
              "command": "python bench/jobs_ratio.py " + " ".join(sys.argv[1:]),
              "recordings": {}}
    codes = [("new", None)] + ([("base", args.baseline_src)] if args.baseline_src else [])
    for minutes in args.minutes:
        video = lr.make_recording(Path(args.source), minutes)
        rows: dict[str, list] = {}
        for i in range(args.pairs):
            for code, src in codes:
                for jobs in (1, 2):
                    name = f"{code}_jobs{jobs}_{minutes}m"
                    r = extract(name, video, jobs, args.detector, src, args.threads)
                    rows.setdefault(name, []).append(r)
                    print(name, i, r, flush=True)
        ratios = {code: [a["wall_s"] / b["wall_s"] for a, b in zip(
            rows[f"{code}_jobs1_{minutes}m"], rows[f"{code}_jobs2_{minutes}m"], strict=True)]
            for code, _ in codes}
        result["recordings"][f"{minutes}m"] = {
            "input": harness.facts(video), "rows": rows,
            "ratio_jobs1_over_jobs2": {c: {"each": [round(x, 3) for x in v],
                                           "median": round(statistics.median(v), 3),
                                           "min": round(min(v), 3), "max": round(max(v), 3)}
                                       for c, v in ratios.items()}}
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    result["load_after"] = list(__import__("os").getloadavg())
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v["ratio_jobs1_over_jobs2"] for k, v in result["recordings"].items()}))



def defaults(args: argparse.Namespace) -> None:
    """The corpus case: each checkout's default workers and threads, alternating."""
    codes = [("new", None)] + ([("base", args.baseline_src)] if args.baseline_src else [])
    clips = sorted(p for p in args.corpus.resolve().iterdir()
                   if p.suffix in {".mp4", ".flv", ".avi"})
    rows: dict[str, list] = {}
    for i in range(args.pairs):
        for code, src in codes:
            name = f"{code}_default_{args.corpus.name}"
            r = extract(name, clips[0], None, args.detector, src, args.threads)
            rows.setdefault(name, []).append(r)
            print(name, i, r, flush=True)
    walls = {k: sorted(r["wall_s"] for r in v) for k, v in rows.items()}
    result = {"machine": harness.machine(), "detector": args.detector,
              "command": "python bench/jobs_ratio.py " + " ".join(sys.argv[1:]),
              "corpus": {"clips": [harness.facts(c) for c in clips], "rows": rows,
                         "wall_s_min_median_max": {k: [v[0], statistics.median(v), v[-1]]
                                                   for k, v in walls.items()}},
              "load_after": list(__import__("os").getloadavg())}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["corpus"]["wall_s_min_median_max"]))


if __name__ == "__main__":
    main()
