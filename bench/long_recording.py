"""One long recording spread over workers (issue 21, item 6): --jobs 2 against --jobs 1, and
peak memory against the recording's length.

    python bench/long_recording.py --source ../shared/data/fer-videos/woman2.mp4 --repeats 1

The recording is made under bench/.work/ (never committed) from a real clip: scaled to
1280x720 and encoded once (H.264, a keyframe every 10 s), then looped with ffmpeg's stream copy
to 15 and 60 minutes. Each row is a fresh ``videmo -q extract --force`` of that one recording
(every 20th frame, ``faces.detector`` as given, ``run.threads: 1``, the default
``run.chunk_s: 300``), all cores allowed; wall seconds, CPU seconds and the peak RSS of the
process tree (bench/run.py's ``timed``). The JSON goes to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (bench/run.py: measure, machine facts)

WORK = harness.WORK / "long"


def make_recording(source: Path, minutes: int) -> Path:
    """``source`` at 1280x720, looped to ``minutes`` (stream copy: encoded once)."""
    WORK.mkdir(parents=True, exist_ok=True)
    base = WORK / "base720.mp4"
    if not base.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-an", "-vf",
                        "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                        "-g", "300", "-pix_fmt", "yuv420p", str(base)], check=True)
    out = WORK / f"rec{minutes}m" / f"debate{minutes}m.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base),
                        "-t", str(minutes * 60), "-c", "copy", str(out)], check=True)
    return out


def extract(name: str, video: Path, jobs: int, detector: str, chunk_s: float | None) -> dict:
    cfg = {"corpus": {"paths": [str(video.parent)]}, "sampling": {"every_n": 20},
           "faces": {"detector": detector},
           "run": {"jobs": jobs, "threads": 1, "chunk_s": chunk_s,
                   "out": str(WORK / "runs" / name)}}
    path = WORK / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "videmo", "-q", "extract", str(path), "--force",
           "--no-progress"]
    r = harness.timed(cmd, one_core=False)
    r.pop("stdout")
    return {"command": f"videmo -q extract CONFIG --force --no-progress with CONFIG "
                       f"{json.dumps(cfg)}", **r}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, help="a real clip to loop")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--detector", default="mediapipe")
    p.add_argument("--out", default=str(harness.REPO / "bench" / "results" / "long.json"))
    args = p.parse_args()
    machine = harness.machine()
    rec60 = make_recording(Path(args.source), 60)
    rec15 = make_recording(Path(args.source), 15)
    rows = {}
    for i in range(args.repeats):
        for name, video, jobs in (("jobs1_60m", rec60, 1), ("jobs2_60m", rec60, 2),
                                  ("jobs1_15m", rec15, 1)):
            harness.log(f"{name} run {i + 1}")
            rows.setdefault(name, []).append(extract(name, video, jobs, args.detector, 300.0))
    result = {"machine": machine, "inputs": {n: harness.facts(v) for n, v in
                                             (("rec60", rec60), ("rec15", rec15))},
              "detector": args.detector, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
