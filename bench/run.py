"""videmo's benchmark at its default settings: CPU time against fer and the decode floor.

    python bench/run.py --tv /tmp/tv/Video_2_30s.mp4 --repeats 5      # everything
    python bench/run.py --tv ... --repeats 1 --only headline,fast     # a smoke run of two rows

One command, real inputs, found by the script:
* the CREMA-D sample in the repo (data/sample/crema-d, six 480x360 clips);
* the fer-videos (woman2.mp4, test.mp4; 596x336), looked up as shared/data/fer-videos in the
  repo's parent folders (``--fer-videos`` to point elsewhere); never committed;
* a real 1280x720 TV scene with 2-5 faces, from ``--tv``: ``videos/Video_2.mp4`` of the public
  GitHub repository yjwong1999/SimpleFR, cut to 0:10-0:40 with
  ``ffmpeg -ss 10 -i Video_2.mp4 -t 30 -an -c:v libx264 -crf 18 -pix_fmt yuv420p Video_2_30s.mp4``
  (720 frames at 23.976 fps); not committed. No upscaled input in any row.
Made under bench/.work/ (never committed): links for the three-clip and six-clip corpora, and
one generated input, the 60-minute loop for the memory row (its source looped, same size).

Every measurement is a whole fresh process, pinned to one CPU (the last one; videmo with
``run.threads: 1``) except the --jobs rows, repeated ``--repeats`` times; rows give the min,
median and max of its CPU time (user + system, from the kernel: on a shared machine wall time
also counts waiting). Start-up is measured apart: the same command on one sampled frame
(``sampling.max_frames: 1``, fer's driver ``--max-frames 1``); steady state per frame is
(median CPU - median start-up CPU) / (frames - 1). Peak memory is the process tree's RSS,
sampled every 200 ms (``POLL_S``).

The ``mtcnn`` rows measure videmo's MTCNN on both engines (``mtcnn``: LiteRT, the default;
``mtcnn_tf``: ``faces.mtcnn_engine: tensorflow``) beside fer 22.4.0's, and compare the two
engines' clip and frame labels (``videmo run``) on the sample and the fer-videos.

The peers run with this interpreter and its TensorFlow, fer added by ``pip install --no-deps
--target`` under bench/.work (fer 25.10.3: Haar + tflite; fer 22.4.0 with FER(mtcnn=True)); the
installed fer is used when it is 25.10.3. Without a package index the peer rows are skipped and
say so. Writes bench/results/DATE.json and the markdown (``--out``, default BENCHMARKS.md).
On 2 idle cores the full command takes about 20 minutes (first run: +3 minutes to build the
60-minute input).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results"
PY = sys.executable
EVERY_N = 20  # the default (sampling.every_n)
ALL_CPUS = frozenset(os.sched_getaffinity(0))
PIN_CPU = max(ALL_CPUS)  # the last CPU: CPU 0 takes most interrupts
SAMPLE = REPO / "data" / "sample" / "crema-d"
ROWS = ("headline", "fast", "agreement", "mtcnn", "mtcnn_tf", "fer22_mtcnn", "mtcnn_agreement",
        "jobs", "mesh", "memory")
sys.path.insert(0, str(REPO / "src"))
from videmo import schema  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ inputs
def find_fer_videos(given: str | None) -> Path | None:
    if given:
        return Path(given)
    for parent in REPO.parents:
        d = parent / "shared" / "data" / "fer-videos"
        if (d / "woman2.mp4").exists():
            return d
    return None


def links(name: str, sources: list[Path]) -> Path:
    """A folder of hard links (symlinks across file systems) named clipK<suffix>."""
    d = WORK / "inputs" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for k, src in enumerate(sources):
        dst = d / f"clip{k}{src.suffix}"
        try:
            os.link(src, dst)
        except OSError:
            dst.symlink_to(src.resolve())
    return d


def write_loop(src: Path, dst: Path, seconds: float) -> Path:
    """``src`` played forwards then backwards to ``seconds`` (no jump cut), same size and fps."""
    if dst.exists():
        return dst
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    h, w = frames[0].shape[:2]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part.mp4")
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(int(round(seconds * fps))):
        k = i % (2 * len(frames) - 2)
        out.write(frames[k if k < len(frames) else 2 * len(frames) - 2 - k])
    out.release()
    tmp.rename(dst)
    return dst


def facts(path: Path) -> dict:
    cap = cv2.VideoCapture(str(path))
    f = {"width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
         "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
         "fps": round(cap.get(cv2.CAP_PROP_FPS), 3),
         "frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT))}
    cap.release()
    f["seconds"] = round(f["frames"] / f["fps"], 1) if f["fps"] else None
    return f


# ------------------------------------------------------------------ one process
# how often the peak RSS is sampled: reading the process tree's /proc files every 50 ms took
# about 10% of a core, which a row with two busy workers on 2 cores pays in wall time
POLL_S = 0.2


def measure(cmd: list[str], one_core: bool = True, env: dict | None = None) -> dict:
    """Run ``cmd`` as a fresh process: wall seconds, CPU seconds (user + sys of the process and
    its reaped children, from wait4) and the peak RSS of its process tree."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO / "src"),
                **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, preexec_fn=_pin if one_core else _unpin)
    peak = [0.0]

    def watch():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            time.sleep(POLL_S)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    # communicate() has reaped it: read its rusage from our children's totals
    wall = time.perf_counter() - t0
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall_s": wall, "stdout": out, "peak_rss_mb": round(peak[0], 1)}


def _pin() -> None:
    os.sched_setaffinity(0, {PIN_CPU})


def _unpin() -> None:
    os.sched_setaffinity(0, ALL_CPUS)


def timed(cmd: list[str], one_core: bool = True, env: dict | None = None) -> dict:
    """:func:`measure` plus the CPU seconds of exactly this process (children's rusage delta)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = measure(cmd, one_core, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["sys_s"] = after.ru_stime - before.ru_stime
    return r


def _tree_rss_mb(pid: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            status = (d / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(d.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(d.name)] = int(line.split()[1])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total / 1024


def stats(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def repeated(n: int, fn, *args, **kw) -> dict:
    """``fn`` run ``n`` times (fresh processes); CPU, wall and memory as min/median/max."""
    return aggregate([fn(*args, **kw) for _ in range(max(1, n))])


def interleaved(n: int, rows: dict) -> dict:
    """Each of ``rows`` (name -> a function of no argument) run once per round, ``n`` rounds:
    a change of the machine's speed meanwhile falls on every row alike. name -> aggregate."""
    runs: dict = {name: [] for name in rows}
    for _ in range(max(1, n)):
        for name, fn in rows.items():
            runs[name].append(fn())
    return {name: aggregate(r) for name, r in runs.items()}


def aggregate(runs: list[dict]) -> dict:
    """Runs of one row: the last one's facts, CPU, wall and memory as min/median/max."""
    out = {k: v for k, v in runs[-1].items() if k not in ("cpu_s", "wall_s", "sys_s",
                                                           "peak_rss_mb", "stdout")}
    out.update({"cpu_s_each": [round(r["cpu_s"], 3) for r in runs],  # in run (round) order
                "cpu_s": stats([r["cpu_s"] for r in runs]),
                "sys_s": stats([r["sys_s"] for r in runs]),
                "wall_s": stats([r["wall_s"] for r in runs]),
                "peak_rss_mb": stats([r["peak_rss_mb"] for r in runs])})
    return out


# ------------------------------------------------------------------ the tools
def videmo_cmd(name: str, corpus: Path, *, every_n: int = EVERY_N, detector: str = "haar",
               jobs: int = 1, max_frames: int | None = None, extra: list[str] = (),
               command: str = "extract", faces: dict | None = None,
               emotions: dict | None = None) -> tuple[list[str], Path]:
    """``videmo -q extract --force`` of ``corpus`` (a folder, or one video), run.threads 1;
    ``faces``: more ``faces.*`` keys (e.g. ``mtcnn_engine``); ``emotions``: the ``emotions``
    section, fer unless given (these rows measure videmo against fer: fer was the default
    frame model until 2026-12-06, when pixels_real became it)."""
    out = WORK / "runs" / name
    folder, include = (corpus, ["*"]) if corpus.is_dir() else (corpus.parent, [corpus.name])
    cfg = {"corpus": {"paths": [str(folder)], "include": include},
           "sampling": {"every_n": every_n, "max_frames": max_frames},
           "faces": {"detector": detector, **(faces or {})},
           "emotions": emotions or {"model": "fer"},
           "run": {"out": str(out), "jobs": jobs, "threads": 1}}
    path = WORK / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return [PY, "-m", "videmo", "-q", command, str(path), "--force", "--no-progress",
            *extra], out


def videmo(name: str, corpus: Path, one_core: bool = True, src: str | None = None,
           **kw) -> dict:
    """:func:`timed` ``videmo_cmd``; ``src``: another checkout's ``src`` (a baseline)."""
    cmd, out = videmo_cmd(name, corpus, **kw)
    r = timed(cmd, one_core, env={"PYTHONPATH": src} if src else None)
    manifest = pd.read_csv(out / "manifest.csv")
    cfg = json.loads(Path(cmd[5]).read_text())  # the settings, in the row (inputs shortened)
    cfg["corpus"]["paths"] = [Path(x).name for x in cfg["corpus"]["paths"]]
    cfg["run"].pop("out")
    r.update({"tool": "videmo", "config": cfg,
              "command": shlex.join(["videmo", *cmd[3:5], "CONFIG", *cmd[6:]]) + " with CONFIG "
              + json.dumps(cfg, separators=(",", ":")),
              "frames_sampled": int(manifest[schema.FRAMES_SAMPLED].sum()),
              "frames_with_face": int(manifest[schema.FRAMES_WITH_FACE].sum()),
              "run_dir": str(out)})
    return r


def floor(video: Path, max_frames: int | None = None) -> dict:
    """The decode floor: grab every frame, retrieve every 20th, nothing else, one thread."""
    code = ("import cv2,sys;cv2.setNumThreads(1);c=cv2.VideoCapture(sys.argv[1]);"
            "n=int(sys.argv[2]);m=int(sys.argv[3]);i=k=0\n"
            "while k<m and c.grab():\n if i%n==0: c.retrieve();k+=1\n i+=1\n"
            "print(k)")
    cmd = [PY, "-c", code, str(video), str(EVERY_N), str(max_frames or 10 ** 9)]
    r = timed(cmd)
    r.update({"tool": "decode floor", "frames_sampled": int(r["stdout"].strip()),
              "command": "python -c '<grab all, retrieve every 20th>' " + video.name})
    return r


def fer_site(version: str) -> list[str] | None:
    """PYTHONPATH entries that give this interpreter fer ``version`` (None: not available)."""
    try:
        if importlib.metadata.version("fer") == version:
            return []
    except importlib.metadata.PackageNotFoundError:
        pass
    site = WORK / f"site-fer-{version}"
    if not (site / "fer").exists():
        log(f"installing fer {version} (--no-deps) into {site}")
        done = subprocess.run([PY, "-m", "pip", "install", "-q", "--no-deps", "--target",
                               str(site), f"fer=={version}"], capture_output=True, text=True)
        if done.returncode != 0:
            log(f"fer {version} not installable (offline?): {done.stderr.strip()[-300:]}")
            return None
    return [str(site)]


def fer(video: Path, site: list[str], mtcnn: bool = False, max_frames: int | None = None) -> dict:
    cmd = [PY, str(REPO / "bench" / "fer_driver.py"), str(video), str(EVERY_N)]
    cmd += (["--mtcnn"] if mtcnn else []) + ([f"--max-frames={max_frames}"] if max_frames else [])
    r = timed(cmd, env={"PYTHONPATH": os.pathsep.join(site)})
    data = json.loads(r["stdout"].strip().splitlines()[-1])
    r.update({"tool": f"fer {data['fer']}" + (" FER(mtcnn=True)" if mtcnn else ""),
              "frames_sampled": len(data["frames"]),
              "frames_with_face": sum(f["faces"] > 0 for f in data["frames"]),
              "loop_cpu_s": data["cpu_seconds"],
              "command": shlex.join(["python", "bench/fer_driver.py", video.name, *cmd[3:]])})
    return r


def with_startup(n: int, fn, *args, **kw) -> dict:
    """``fn`` repeated, and repeated again on one sampled frame: start-up and steady state."""
    full = repeated(n, fn, *args, **kw)
    start = repeated(n, fn, *args, **{**kw, "max_frames": 1})
    frames = full["frames_sampled"]
    steady = (full["cpu_s"]["median"] - start["cpu_s"]["median"]) / max(1, frames - 1)
    full.update({"startup_cpu_s": start["cpu_s"], "steady_ms_per_frame": round(1000 * steady, 1)})
    log(f"{full['tool']}: {frames} frames, CPU median {full['cpu_s']['median']:.2f}s, start-up "
        f"{start['cpu_s']['median']:.2f}s, {full['steady_ms_per_frame']} ms/frame steady")
    return full


# ------------------------------------------------------------------ labels
def frame_labels(run_dir: Path) -> dict[str, str]:
    """Top emotion of each sampled frame's largest face (or no face), by clip:frame."""
    frames = pd.read_parquet(Path(run_dir) / "frames.parquet")
    out = {}
    for row in frames.itertuples(index=False):
        key = f"{getattr(row, schema.CLIP_ID)}:{getattr(row, schema.FRAME_INDEX)}"
        if getattr(row, schema.FACE_INDEX) > 0:
            continue
        if getattr(row, schema.N_FACES) == 0:
            out[key] = schema.NO_FACE
        else:
            scores = {e: getattr(row, e) for e in schema.EMOTIONS}
            out[key] = max(scores, key=scores.get)
    return out


def clip_labels(run_dir: Path) -> dict[str, str]:
    table = pd.read_csv(Path(run_dir) / "report" / "clips.csv")
    return dict(zip(table[schema.FILENAME], table[schema.PREDICT], strict=True))


def agreement(a: dict, b: dict) -> dict:
    keys = sorted(set(a) & set(b))
    same = [k for k in keys if a[k] == b[k]]
    return {"equal": len(same), "of": len(keys),
            "share": round(len(same) / len(keys), 4) if keys else None,
            "differ": {k: (a[k], b[k]) for k in keys if a[k] != b[k]}}


# ------------------------------------------------------------------ the rows
def run(args) -> dict:
    n, only = args.repeats, set(args.only.split(",")) if args.only else set(ROWS)
    unknown = only - set(ROWS)
    if unknown:
        raise SystemExit(f"--only: unknown rows {sorted(unknown)}; known: {', '.join(ROWS)}")
    tv = Path(args.tv) if args.tv else None
    if tv is not None and not tv.is_file():
        raise SystemExit(f"--tv {tv}: no such file")
    fv = find_fer_videos(args.fer_videos)
    inputs = {"sample": SAMPLE}
    if fv:
        inputs["fer-videos"] = fv
    if tv:
        inputs["tv"] = tv
    R: dict[str, dict] = {}
    notes: list[str] = []
    fer25 = fer_site("25.10.3") if only & {"headline"} else None
    fer22 = fer_site("22.4.0") if only & {"fer22_mtcnn"} else None

    if "headline" in only:
        if tv is None:
            notes.append("headline: no --tv given, rows skipped")
        else:
            R["floor_tv"] = repeated(n, floor, tv)
            R["videmo_tv"] = with_startup(n, videmo, "videmo_tv", tv)
            if fer25 is not None:
                R["fer25_tv"] = with_startup(n, fer, tv, fer25)
            else:
                notes.append("fer 25.10.3 not available: its row is missing")
    if "fast" in only and tv is not None:
        tv3 = links("tv3", [tv] * 3)
        inputs["tv3"] = tv3
        R["floor_tv3"] = repeated(n, lambda: _floor_many(tv3))
        R["fast_tv3"] = repeated(n, videmo, "fast_tv3", tv3, detector="mediapipe")
        R["haar_tv3"] = repeated(1, videmo, "haar_tv3", tv3)
    if "agreement" in only:
        R["agreement"] = label_agreement(fv)
    src = (fv / "woman2.mp4") if fv else SAMPLE / "1001_DFA_HAP_XX.flv"
    if only & {"mtcnn", "mtcnn_tf", "fer22_mtcnn"}:
        inputs["mtcnn"] = src
    if "mtcnn" in only:
        R["mtcnn"] = with_startup(n, videmo, "mtcnn", src, detector="mtcnn")
    if "mtcnn_tf" in only:
        R["mtcnn_tf"] = with_startup(n, videmo, "mtcnn_tf", src, detector="mtcnn",
                                     faces={"mtcnn_engine": "tensorflow"})
    if "fer22_mtcnn" in only:
        if fer22 is not None:
            R["fer22_mtcnn"] = with_startup(n, fer, src, fer22, mtcnn=True)
        else:
            notes.append("fer 22.4.0 not available: its row is missing")
    if "mtcnn_agreement" in only:
        R["mtcnn_agreement"] = label_agreement(fv, ("mtcnn_tf", "mtcnn"))
    if "jobs" in only:
        clips = [fv / "woman2.mp4"] * 6 if fv else sorted(SAMPLE.glob("*.flv"))
        corpus = links("jobs6", clips)
        inputs["jobs6"] = corpus
        every = EVERY_N if fv else 5
        R["jobs1"] = repeated(n, videmo, "jobs1", corpus, one_core=False, jobs=1, every_n=every)
        R["jobs2"] = repeated(n, videmo, "jobs2", corpus, one_core=False, jobs=2, every_n=every)
    if "mesh" in only:
        R["mesh_sample"] = mesh_speed(None, n)
        if tv is not None:
            R["mesh_tv"] = mesh_speed(tv, n)
    if "memory" in only:
        src = (fv / "woman2.mp4") if fv else SAMPLE / "1001_DFA_HAP_XX.flv"
        short = write_loop(src, WORK / "inputs" / "memory" / "loop1m.mp4", 60)
        long = write_loop(src, WORK / "inputs" / "memory" / f"loop{args.long_minutes:g}m.mp4",
                          args.long_minutes * 60)
        inputs["loop1m"], inputs["loop_long"] = short, long
        R["memory_1m"] = videmo("memory_1m", short, every_n=200)
        R["memory_long"] = videmo("memory_long", long, every_n=200)
    return {"inputs": {k: {"path": str(v), **({} if v.is_dir() else facts(v))}
                       for k, v in inputs.items()},
            "runs": R, "notes": notes}


def _floor_many(folder: Path) -> dict:
    """The decode floor of every clip of a folder, as one process like videmo's run."""
    code = ("import cv2,sys,glob;cv2.setNumThreads(1);k=0\n"
            "for p in sorted(glob.glob(sys.argv[1]+'/*')):\n"
            " c=cv2.VideoCapture(p);i=0\n"
            " while c.grab():\n  if i%20==0: c.retrieve();k+=1\n  i+=1\n"
            "print(k)")
    r = timed([PY, "-c", code, str(folder)])
    r.update({"tool": "decode floor", "frames_sampled": int(r["stdout"].strip()),
              "command": "python -c '<grab all, retrieve every 20th, each clip>' tv3/"})
    return r


AGREE_SETTINGS = {"haar": {"detector": "haar"}, "mediapipe": {"detector": "mediapipe"},
                  "mtcnn": {"detector": "mtcnn"},
                  "mtcnn_tf": {"detector": "mtcnn", "faces": {"mtcnn_engine": "tensorflow"}}}


def label_agreement(fv: Path | None, pair: tuple[str, str] = ("haar", "mediapipe")) -> dict:
    """Per-clip labels (videmo run's vote) and per-frame top labels of two settings of
    :data:`AGREE_SETTINGS` (by default the fast path, faces.detector: mediapipe, against the
    default, haar), on the sample and the fer-videos."""
    out = {}
    corpora = [("sample", SAMPLE, 5)] + ([("fer-videos", fv, EVERY_N)] if fv else [])
    base, other = pair
    for name, corpus, every in corpora:
        runs = {}
        for det in pair:
            cmd, run_dir = videmo_cmd(f"agree_{name}_{det}", corpus, every_n=every,
                                      command="run", **AGREE_SETTINGS[det])
            timed(cmd)
            runs[det] = run_dir
        out[name] = {"every_n": every, "pair": list(pair),
                     "clips": agreement(clip_labels(runs[base]), clip_labels(runs[other])),
                     "frames": agreement(frame_labels(runs[base]), frame_labels(runs[other]))}
        log(f"agreement {name}: clips {out[name]['clips']['share']}, frames "
            f"{out[name]['frames']['share']}")
    return out


def mesh_speed(video: Path | None, n: int) -> dict:
    cmd = [PY, str(REPO / "bench" / "mesh_speed.py"), "--repeat", str(max(1, min(n, 3)))]
    cmd += ["--video", str(video)] if video else []
    r = timed(cmd)
    r.update(json.loads(r.pop("stdout")))
    r["command"] = "python bench/mesh_speed.py " + " ".join(cmd[2:]).replace(str(video), "TV") \
        if video else "python bench/mesh_speed.py " + " ".join(cmd[2:])
    log(f"mesh {video.name if video else 'sample'}: {r['mesh_ms_per_face']} ms/face, "
        f"BlazeFace {r['blazeface_fps']} fps vs Haar {r['haar_fps']} fps")
    return r


def byte_compile(*src: str | Path) -> str:
    """Write the .pyc of videmo's sources (``src``: other checkouts' too) before timing, as an
    installed package has them (pip compiles at install; scripts/bootstrap.sh does for the
    editable install). Where PYTHONDONTWRITEBYTECODE is set (this machine) no run would write
    them, and every process would compile ~50 modules again (~0.1 s CPU). What the rows say."""
    import compileall

    for path in (REPO / "src" / "videmo", *src):
        compileall.compile_dir(str(path), quiet=1)
    return "compiled (bench/run.py byte_compile)"


# ------------------------------------------------------------------ the report
def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = int(open("/proc/meminfo").read().split()[1]) / 1024 ** 2
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True,
                           text=True).stdout.strip()
    from videmo.runtime import versions

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1),
            "os": platform.platform(), "commit": commit + ("-dirty" if dirty else ""),
            "versions": versions(),
            "load_before": os.getloadavg()}


def summarise(R: dict) -> dict:
    def med(row, key="cpu_s"):
        return R[row][key]["median"] if row in R else None

    def ratio(a, b):
        return round(a / b, 2) if a is not None and b else None

    s = {}
    if "videmo_tv" in R:
        floor_ms = 1000 * med("floor_tv") / R["floor_tv"]["frames_sampled"]
        s["default_vs_floor_process"] = ratio(med("videmo_tv"), med("floor_tv"))
        s["default_vs_floor_steady"] = ratio(R["videmo_tv"]["steady_ms_per_frame"], floor_ms)
        s["floor_ms_per_frame"] = round(floor_ms, 1)
    if "fer25_tv" in R:
        s["default_vs_fer25_process"] = ratio(med("fer25_tv"), med("videmo_tv"))
        s["default_vs_fer25_steady"] = ratio(R["fer25_tv"]["steady_ms_per_frame"],
                                             R["videmo_tv"]["steady_ms_per_frame"])
        s["startup_s"] = (med("videmo_tv", "startup_cpu_s"), med("fer25_tv", "startup_cpu_s"))
        s["peak_rss_mb"] = (med("videmo_tv", "peak_rss_mb"), med("fer25_tv", "peak_rss_mb"))
    if "fast_tv3" in R:
        s["fast_vs_floor_process"] = ratio(med("fast_tv3"), med("floor_tv3"))
        s["fast_vs_default_process"] = ratio(med("haar_tv3"), med("fast_tv3"))
    if "fer22_mtcnn" in R:
        s["mtcnn_vs_fer22_steady"] = ratio(R["fer22_mtcnn"]["steady_ms_per_frame"],
                                           R["mtcnn"]["steady_ms_per_frame"])
        s["mtcnn_vs_fer22_process"] = ratio(med("fer22_mtcnn"), med("mtcnn"))
        s["mtcnn_peak_rss_mb"] = (med("mtcnn", "peak_rss_mb"), med("fer22_mtcnn", "peak_rss_mb"))
    if "mtcnn" in R:
        s["mtcnn_startup_cpu_s"] = med("mtcnn", "startup_cpu_s")
    if "mtcnn_tf" in R:
        s["mtcnn_vs_tf_steady"] = ratio(R["mtcnn_tf"]["steady_ms_per_frame"],
                                        R["mtcnn"]["steady_ms_per_frame"])
        s["mtcnn_tf_peak_rss_mb"] = med("mtcnn_tf", "peak_rss_mb")
        s["mtcnn_tf_startup_cpu_s"] = med("mtcnn_tf", "startup_cpu_s")
    if "jobs2" in R:
        s["jobs2_speedup_wall"] = ratio(med("jobs1", "wall_s"), med("jobs2", "wall_s"))
    if "memory_long" in R:
        s["memory_mb"] = (R["memory_1m"]["peak_rss_mb"], R["memory_long"]["peak_rss_mb"])
    return s


def fmt(st: dict | None) -> str:
    return "-" if not st else f"{st['min']:.2f} / {st['median']:.2f} / {st['max']:.2f}"


GOALS = (  # (goal, summary key, how it is met, what the value means)
    ("default (Haar, full resolution) >= 2x fer 25.10.3 per frame, steady state",
     "default_vs_fer25_steady", lambda v: v >= 2, "x fer"),
    ("default <= 3x the decode floor per frame", "default_vs_floor_steady", lambda v: v <= 3,
     "x the floor"),
    ("fast path (mediapipe) <= 1.6x the decode floor, whole processes, 3 x 30 s",
     "fast_vs_floor_process", lambda v: v <= 1.6, "x the floor"),
    ("MTCNN >= 2x fer 22.4.0 per frame", "mtcnn_vs_fer22_steady", lambda v: v >= 2, "x fer"),
    ("MTCNN peak memory <= half of fer 22.4.0's (issue 24)", "mtcnn_peak_rss_mb",
     lambda v: v[0] <= v[1] / 2, "MB (videmo, fer)"),
    ("MTCNN start-up < 2 s CPU (issue 24)", "mtcnn_startup_cpu_s", lambda v: v < 2, "s"),
    ("--jobs 2 >= 1.8x the throughput of one job (wall)", "jobs2_speedup_wall",
     lambda v: v >= 1.8, "x"),
    ("peak memory flat from 1 to 60 minutes (within 10%)", "memory_mb",
     lambda v: v[1] <= 1.1 * v[0], "MB (1 min, 60 min)"),
)


def goals(S: dict) -> list[tuple[str, str, str]]:
    """The issue's goals against this run's summary: (goal, measured, met)."""
    out = []
    for goal, key, ok, unit in GOALS:
        v = S.get(key)
        if v is None:
            out.append((goal, "not measured", "-"))
            continue
        shown = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        out.append((goal, f"{shown} {unit}", "yes" if ok(v) else "**no**"))
    return out


def write_markdown(res: dict, smoke: bool) -> str:
    R, S, M = res["runs"], res["summary"], res["machine"]
    head = "# Benchmarks" + (" (SMOKE RUN: not for committing)" if smoke else "")
    lines = [head, "",
             f"{res['date']}, commit `{M['commit']}`, {M['cpu']} ({M['cores']} cores, "
             f"{M['memory_gb']} GB), {M['os']}; load average before the run "
             f"{', '.join(f'{x:.2f}' for x in M['load_before'])}. Produced by "
             f"`{res['command']}`; raw numbers in `{res['json']}`. Versions: "
             + ", ".join(f"{k} {v}" for k, v in M["versions"].items() if k != "platform") + ".",
             "", "Every row is a whole process pinned to one CPU (videmo: `run.threads: 1`, "
             "`videmo -q extract --force`), every 20th frame; CPU seconds = user + system, "
             f"min / median / max of {res['repeats']} runs. Start-up = the same command on one "
             "sampled frame; steady = (median - start-up median) / (frames - 1).", "",
             "| input | path | size | frames | seconds |", "|---|---|---|---|---|"]
    for k, f in res["inputs"].items():
        size = f"{f['width']}x{f['height']} @ {f['fps']} fps" if "width" in f else "folder"
        lines.append(f"| {k} | `{Path(f['path']).name}` | {size} | {f.get('frames', '-')} | "
                     f"{f.get('seconds', '-')} |")
    lines += ["", "## Headline: default settings (Haar, full resolution) on the 720p TV scene",
              "", "| row | tool | frames | CPU s | start-up CPU s | steady ms/frame | wall s | "
              "peak RSS MB | command |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in R.items():
        if "cpu_s" not in r or name.startswith(("mesh", "memory")):
            continue
        lines.append(
            f"| {name} | {r['tool']} | {r['frames_sampled']} | {fmt(r['cpu_s'])} | "
            f"{fmt(r.get('startup_cpu_s'))} | {r.get('steady_ms_per_frame', '-')} | "
            f"{fmt(r['wall_s'])} | {fmt(r['peak_rss_mb'])} | `{r['command']}` |")
    lines += ["", "`haar_tv3` ran once: it only gives the fast path's ratio to the default.",
              "", "## Goals (issues 16 and 24)", "", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {g} | {m} | {met} |" for g, m, met in goals(S)]
    lines += ["", "Why the unmet ones are not met, with the profiles they rest on: README, "
              "section Speed, and `bench/profiles/` (`haar-tv720.txt`, `levers.md`)."]
    lines += ["", "## Ratios", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in S.items()]
    for row, title in (("agreement", "Fast path label agreement (mediapipe vs haar"),
                       ("mtcnn_agreement", "MTCNN engines' label agreement (LiteRT vs "
                                           "TensorFlow")):
        if row not in R:
            continue
        lines += ["", f"## {title}, `videmo run`)", "",
                  "| corpus | every_n | clip labels equal | frame labels equal | clips that "
                  "differ |", "|---|---|---|---|---|"]
        for name, a in R[row].items():
            c, f = a["clips"], a["frames"]
            lines.append(f"| {name} | {a['every_n']} | {c['equal']}/{c['of']} | "
                         f"{f['equal']}/{f['of']} | "
                         f"{', '.join(f'{k}: {x}->{y}' for k, (x, y) in c['differ'].items())}"
                         f" |")
    for name in ("mesh_sample", "mesh_tv"):
        if name in R:
            r = R[name]
            lines += ["", f"## Mesh and detectors ({name}, {r['frame_size']}, one core)", "",
                      f"`{r['command']}`: BlazeFace {r['blazeface_fps']} fps, Haar "
                      f"{r['haar_fps']} fps on the same {r['frames']} frames; mesh "
                      f"{r['mesh_ms_per_face']} ms per face ({r['faces']} faces: landmarks "
                      f"{r['landmarks_ms']}, blendshapes {r['blendshapes_ms']}, geometry "
                      f"{r['geometry_ms']}); frame models per face: "
                      + ", ".join(f"{k} {v} ms" for k, v in r.get("frame_models_ms", {}).items())]
    if "memory_long" in R:
        a, b = R["memory_1m"], R["memory_long"]
        lines += ["", "## Memory", "", f"Peak RSS {a['peak_rss_mb']} MB (1 minute) vs "
                  f"{b['peak_rss_mb']} MB ({res['inputs']['loop_long'].get('seconds')} s), "
                  "Haar, every 200th frame: `" + b["command"] + "`."]
    lines += ["", "## GPU", "", "Not measured (no GPU on this machine)." if not shutil.which(
        "nvidia-smi") else "This machine has an NVIDIA GPU, but every row above ran on the CPU."]
    if res["notes"]:
        lines += ["", "## Notes", ""] + [f"* {x}" for x in res["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tv", help="the 30 s 720p TV scene (see the docstring for how to make it)")
    p.add_argument("--fer-videos", help="folder of woman2.mp4/test.mp4 (default: found in "
                                        "shared/data/fer-videos above the repo)")
    p.add_argument("--repeats", type=int, default=5, help="runs per row (default 5)")
    p.add_argument("--only", help=f"comma-separated rows of {', '.join(ROWS)} (default: all)")
    p.add_argument("--long-minutes", type=float, default=60.0,
                   help="length of the memory row's long input (default 60)")
    p.add_argument("--out", default=str(REPO / "BENCHMARKS.md"), help="markdown results")
    p.add_argument("--render", metavar="JSON", help="only write the markdown again from a "
                                                    "results JSON (nothing is measured)")
    args = p.parse_args()
    if args.render:
        res = json.loads(Path(args.render).read_text())
        smoke = res["json"].startswith(str(WORK.relative_to(REPO)))
        Path(args.out).write_text(write_markdown(res, smoke))
        log(f"-> {args.out} (from {args.render})")
        return
    smoke = bool(args.only) or args.repeats < 5
    if len(ALL_CPUS) > 1:  # this process polls memory (POLL_S): keep it off the pinned CPU
        os.sched_setaffinity(0, ALL_CPUS - {PIN_CPU})
    command = shlex.join(["python", "bench/run.py", *sys.argv[1:]])
    date = dt.date.today().isoformat()
    m = {**machine(), "bytecode": byte_compile()}
    t0 = time.perf_counter()
    res = run(args)
    res.update({"date": date, "machine": m, "command": command, "repeats": args.repeats,
                "minutes": round((time.perf_counter() - t0) / 60, 1)})
    res["summary"] = summarise(res["runs"])
    tag = "-smoke" + (f"-{args.only.replace(',', '-')}" if args.only else "") if smoke else ""
    json_path = (WORK if smoke else RESULTS) / f"{date}{tag}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    res["json"] = str(json_path.relative_to(REPO))
    json_path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    out = Path(args.out)
    if smoke and out.resolve() == (REPO / "BENCHMARKS.md").resolve():
        out = WORK / "BENCHMARKS-smoke.md"  # a smoke run never overwrites the committed file
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(write_markdown(res, smoke))
    for k, v in res["summary"].items():
        log(f"{k}: {v}")
    log(f"-> {out}, {json_path} ({res['minutes']} min)")


if __name__ == "__main__":
    main()
