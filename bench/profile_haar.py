"""Where the time of a Haar extract goes: cProfile over `videmo extract`, in one process.

    .venv/bin/python bench/profile_haar.py                 # -> bench/profiles/haar-sample.txt
    .venv/bin/python bench/profile_haar.py --every-n 5 --out bench/profiles/x.txt
    .venv/bin/python bench/profile_haar.py --input /tmp/tv/Video_2_30s.mp4 --every-n 20 \
        --out bench/profiles/haar-tv720.txt              # the default settings on a 720p scene

Runs `videmo extract` of the sample corpus (data/sample/crema-d, six 480x360 clips; or
``--input``, a video or a folder) with Haar (or ``--detector``),
--jobs 1 and run.threads 1 (so every call is in the profiled process) into a fresh temporary run
directory, and writes a summary: the machine, versions, commit and command, the share of the
analysis time spent in OpenCV's detectMultiScale (the Haar call), in decoding, in the emotion
model, and the top functions by own time. README's Speed section quotes this file.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import platform
import pstats
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "crema-d"
sys.path.insert(0, str(REPO / "src"))

# (label, how a pstats function key is recognised): C calls appear as ('~', 0, '<method ...>')
PARTS = (
    ("Haar: cv2.CascadeClassifier.detectMultiScale", "detectMultiScale"),
    ("decoding: cv2.VideoCapture.grab + retrieve", ("grab", "retrieve")),
    ("emotions: the FER model (LiteRT Invoke)", "Invoke"),
)


def _matches(func: tuple[str, int, str], pattern) -> bool:
    name = func[2]
    patterns = pattern if isinstance(pattern, tuple) else (pattern,)
    return any(f"'{p}'" in name or f".{p}" in name or name == p for p in patterns)


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every-n", type=int, default=1,
                    help="sampling.every_n (default 1: every frame is analysed)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "profiles" / "haar-sample.txt")
    ap.add_argument("--input", type=Path, default=SAMPLE,
                    help="a video or a folder of clips (default: the sample corpus)")
    ap.add_argument("--detector", default="haar", help="faces.detector (default haar)")
    args = ap.parse_args()

    from videmo import __version__
    from videmo.cli import main as videmo_main
    from videmo.runtime import versions

    with tempfile.TemporaryDirectory(prefix="videmo-profile-") as tmp:
        job = Path(tmp) / "job.yaml"
        src = args.input.resolve()
        corpus = (f"{{paths: ['{src.parent}'], include: ['{src.name}']}}" if src.is_file()
                  else f"{{paths: ['{src}']}}")
        job.write_text(f"corpus: {corpus}\n"
                       f"sampling: {{every_n: {args.every_n}}}\n"
                       f"faces: {{detector: {args.detector}}}\n"
                       f"run: {{out: '{Path(tmp) / 'run'}', jobs: 1, threads: 1}}\n")
        profiler = cProfile.Profile()
        profiler.enable()
        code = videmo_main(["-q", "extract", str(job), "--no-progress"])
        profiler.disable()
    if code != 0:
        print(f"videmo extract exited {code}", file=sys.stderr)
        return code

    what = "the sample corpus" if args.input == SAMPLE else args.input.name
    stats = pstats.Stats(profiler)
    raw = stats.stats  # {func: (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in raw.values())
    analysis = max((v[3] for f, v in raw.items() if f[2] == "analyze_clip"), default=0.0)
    lines = [
        f"# cProfile of a {args.detector} extract of {what} (made by bench/profile_haar.py)",
        f"date: {dt.date.today().isoformat()}",
        f"host: {platform.node()} ({platform.machine()}, {platform.processor() or '?'})",
        f"python: {platform.python_version()}; videmo {__version__} at commit {_commit()}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions().items())),
        "command: " + shlex.join([".venv/bin/python", "bench/profile_haar.py",
                                  *sys.argv[1:]]),
        f"run: {what}, sampling.every_n={args.every_n}, {args.detector}, --jobs 1, "
        f"run.threads 1",
        "",
        f"total profiled time: {total:.2f} s (includes imports and model loading)",
        f"analyze_clip (the per-clip work): {analysis:.2f} s",
        "",
        f"{'share of analyze_clip':>22}  {'seconds':>8}  calls  what",
    ]
    for label, pattern in PARTS:
        hits = [(f, v) for f, v in raw.items() if _matches(f, pattern)]
        secs = sum(v[2] for _, v in hits)  # own time: C calls have no children in cProfile
        calls = sum(v[1] for _, v in hits)
        share = secs / analysis if analysis else 0.0
        lines.append(f"{share:>21.1%}  {secs:>8.2f}  {calls:>5}  {label}")
    lines += ["", "top 15 functions by own time:", ""]
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(15)
    body = buf.getvalue()
    body = body[body.find("   ncalls"):] if "   ncalls" in body else body
    lines += [line.rstrip() for line in body.splitlines()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines).rstrip() + "\n")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
