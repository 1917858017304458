"""videmo's benchmark: speed and memory against fer and against the decode floor.

    .venv/bin/python bench/run.py            # everything (about 20 min on 2 cores, first run
                                             # longer: it builds inputs and fer's venvs)
    .venv/bin/python bench/run.py --quick    # smaller inputs, no 1080p peers: a smoke run

It generates its inputs under bench/.work/ (never committed): a 1-minute clip at native size
(../shared/data/fer-videos/woman2.mp4 looped when present, else a CREMA-D sample clip), the same
upscaled to 1920x1080, a 60-minute loop for memory, and an 8-clip corpus for --jobs scaling.
The peers run in throwaway virtual environments it makes there: fer 25.10.3 (Haar + tflite) and
fer 22.4.0 with FER(mtcnn=True), the study's 2021 set-up. Every measurement is a fresh process;
"one core" runs are pinned to the last CPU (sched_setaffinity) and videmo gets run.threads = 1.
Results: bench/results/DATE.json and BENCHMARKS.md (machine, versions, commit, command).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results"
PY = sys.executable
EVERY_N = 20
PIN_CPU = max(os.sched_getaffinity(0))  # the last CPU: CPU 0 takes most interrupts
FER_VIDEO = REPO.parent / "shared" / "data" / "fer-videos" / "woman2.mp4"
SAMPLE_VIDEO = REPO / "data" / "sample" / "crema-d" / "1001_DFA_HAP_XX.flv"
PEERS = {
    # the measured recipes from the issue: fer 25.10.3 without its torch/moviepy dependencies
    "fer25": ["--no-deps fer==25.10.3",
              "tensorflow==2.21.* opencv-python-headless<5 pillow requests setuptools<82"],
    # fer 22.4.0 declares keras but not tensorflow, and imports pandas without declaring it
    "fer22": ["fer==22.4.0 opencv-contrib-python==4.14.0.94 setuptools<82 tensorflow==2.21.* "
              "pandas"],
}
sys.path.insert(0, str(REPO / "src"))
from videmo import schema  # noqa: E402

LABEL3 = dict(schema.STUDY_MAPPING)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ inputs
def write_loop(src: Path, dst: Path, seconds: float, size: tuple[int, int] | None) -> Path:
    """``src`` looped (and resized) to ``seconds``, MPEG-4 part 2 in mp4, at src's fps."""
    if dst.exists():
        return dst
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) if size else f)
    cap.release()
    h, w = frames[0].shape[:2]
    tmp = dst.with_suffix(".part.mp4")
    dst.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    n = int(round(seconds * fps))
    for i in range(n):  # forwards then backwards: no jump cut at the loop point
        k = i % (2 * len(frames) - 2)
        out.write(frames[k if k < len(frames) else 2 * len(frames) - 2 - k])
    out.release()
    tmp.rename(dst)
    return dst


def make_inputs(quick: bool, long_minutes: float) -> dict[str, Path]:
    src = FER_VIDEO if FER_VIDEO.exists() else SAMPLE_VIDEO
    minute = 20.0 if quick else 60.0
    t0 = time.perf_counter()
    inputs = {
        "native": write_loop(src, WORK / "inputs" / f"native-{minute:g}s" / "native.mp4",
                             minute, None),
        "hd1080": write_loop(src, WORK / "inputs" / f"hd1080-{minute:g}s" / "hd1080.mp4",
                             minute, (1920, 1080)),
        "long": write_loop(src, WORK / "inputs" / "long" / f"long{long_minutes:g}m.mp4",
                           long_minutes * 60, None),
    }
    corpus = WORK / "inputs" / f"corpus8-{minute:g}s"
    corpus.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        p = corpus / f"clip{i}.mp4"
        if not p.exists():
            os.link(inputs["native"], p)
    inputs["corpus8"] = corpus
    log(f"inputs ready in {time.perf_counter() - t0:.0f}s (source {src.name})")
    return inputs


def video_facts(path: Path) -> dict:
    cap = cv2.VideoCapture(str(path))
    facts = {"width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
             "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
             "fps": round(cap.get(cv2.CAP_PROP_FPS), 3),
             "frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT))}
    cap.release()
    facts["minutes"] = round(facts["frames"] / facts["fps"] / 60, 3)
    return facts


# ------------------------------------------------------------------ measuring a process
def peak_rss(cmd: list[str], one_core: bool, env: dict | None = None) -> dict:
    """Run ``cmd`` as a fresh process (pinned to one CPU when ``one_core``): wall seconds, CPU
    seconds (user + sys, its reaped children included) and the peak RSS of its process tree,
    sampled every 50 ms. Only one measured process runs at a time."""
    import threading

    def pin():
        os.sched_setaffinity(0, {PIN_CPU})

    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, preexec_fn=pin if one_core else None)
    peak = [0.0]
    timeline: list[tuple[float, float]] = []

    def watch():
        while proc.poll() is None:
            rss = _tree_rss_mb(proc.pid)
            peak[0] = max(peak[0], rss)
            timeline.append((time.perf_counter() - t0, rss))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # RSS at 20, 40, 60, 80 and 100% of the run: a leak grows, a flat process does not
    marks = [round(max((r for t, r in timeline if t <= wall * q), default=0.0), 1)
             for q in (0.2, 0.4, 0.6, 0.8, 1.0)]
    return {"wall_s": wall, "cpu_s": cpu, "stdout": out, "peak_rss_mb": round(peak[0], 1),
            "rss_timeline_mb": marks}


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its descendants (from /proc), in MB."""
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


# ------------------------------------------------------------------ the runs
def best_of(repeats: int, fn, *args, **kw) -> dict:
    """The fastest of ``repeats`` runs (by loop seconds): this VM's timings are noisy."""
    runs = [fn(*args, **kw) for _ in range(max(1, repeats))]
    best = min(runs, key=lambda r: r["loop_s"])
    best["repeats"] = [round(r["loop_s"], 3) for r in runs]
    return best


def videmo_run(name: str, corpus: Path, *, detector: str = "haar", max_width: int | None = None,
               jobs: int = 1, threads: int = 1, one_core: bool = True,
               extra: dict | None = None) -> dict:
    out = WORK / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = {"corpus": {"paths": [str(corpus.parent if corpus.is_file() else corpus)],
                      "include": [corpus.name] if corpus.is_file() else ["*"]},
           "sampling": {"every_n": EVERY_N},
           "faces": {"detector": detector, "max_width": max_width, **(extra or {})},
           "run": {"out": str(out), "jobs": jobs, "threads": threads}}
    path = WORK / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))  # JSON is YAML
    r = peak_rss([PY, "-m", "videmo", "extract", str(path), "--no-progress"], one_core)
    manifest = pd.read_csv(out / "manifest.csv")
    frames = pd.read_parquet(out / "frames.parquet")
    sampled = int(manifest[schema.FRAMES_SAMPLED].sum())
    loop = float(manifest[schema.SECONDS].sum())
    r.pop("stdout")
    r.update({"tool": "videmo", "detector": detector, "max_width": max_width, "jobs": jobs,
              "threads": threads, "settings": extra or {},
              "frames_sampled": sampled, "loop_s": round(loop, 3),
              "sampled_fps": round(sampled / loop, 2),
              "frames_with_face": int(manifest[schema.FRAMES_WITH_FACE].sum()),
              "labels": _videmo_labels(frames)})
    log(f"videmo {name}: {sampled} frames, {r['sampled_fps']} sampled fps, "
        f"{r['peak_rss_mb']} MB, wall {r['wall_s']:.1f}s")
    return r


def _videmo_labels(frames: pd.DataFrame) -> dict[str, str]:
    out = {}
    for row in frames.itertuples(index=False):
        key = f"{getattr(row, schema.CLIP_ID)}:{getattr(row, schema.FRAME_INDEX)}"
        if getattr(row, schema.N_FACES) == 0:
            out[key] = schema.NO_FACE
        else:
            scores = {e: getattr(row, e) for e in schema.EMOTIONS}
            out[key] = LABEL3[max(scores, key=scores.get)]
    return out


def decode_floor(name: str, video: Path, one_core: bool = True) -> dict:
    code = ("import cv2,sys,time,json;"
            + ("cv2.setNumThreads(1);" if one_core else "") + "c=cv2.VideoCapture(sys.argv[1]);"
            "n=int(sys.argv[2]);i=k=0;t=time.perf_counter()\n"
            "while c.grab():\n if i%n==0: c.retrieve();k+=1\n i+=1\n"
            "print(json.dumps({'loop_s':time.perf_counter()-t,'frames_decoded':i,"
            "'frames_sampled':k}))")
    r = peak_rss([PY, "-c", code, str(video), str(EVERY_N)], one_core=one_core)
    r.update(json.loads(r.pop("stdout")))
    r["tool"] = "decode floor"
    r["threads"] = 1 if one_core else "OpenCV default"
    log(f"decode floor {name}: {r['frames_decoded']} frames in {r['loop_s']:.1f}s")
    return r


def peer_python(name: str) -> Path:
    venv = WORK / f"venv-{name}"
    py = venv / "bin" / "python"
    stamp = venv / ".bench-stamp"
    want = json.dumps(PEERS[name])
    if stamp.exists() and stamp.read_text() == want:
        return py
    log(f"making {venv} ({'; '.join(PEERS[name])})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    with open(WORK / f"pip-{name}.log", "w") as pip_log:
        for args in PEERS[name]:
            subprocess.run([str(py), "-m", "pip", "install", "-q", *args.split()], check=True,
                           stdout=pip_log, stderr=subprocess.STDOUT)
    stamp.write_text(want)
    return py


def fer_run(name: str, peer: str, video: Path, mtcnn: bool) -> dict:
    py = peer_python(peer)
    cmd = [str(py), str(REPO / "bench" / "fer_driver.py"), str(video), str(EVERY_N)]
    r = peak_rss(cmd + (["--mtcnn"] if mtcnn else []), one_core=True)
    data = json.loads(r.pop("stdout").strip().splitlines()[-1])
    clip = video.stem
    labels = {f"{clip}:{f['frame']}": LABEL3[f["top"]] if f["top"] else schema.NO_FACE
              for f in data["frames"]}
    r.update({"tool": f"fer {data['fer']}", "detector": "mtcnn" if mtcnn else "haar",
              "frames_sampled": len(data["frames"]), "loop_s": round(data["seconds"], 3),
              "sampled_fps": round(len(data["frames"]) / data["seconds"], 2),
              "frames_with_face": sum(f["faces"] > 0 for f in data["frames"]),
              "labels": labels})
    log(f"{r['tool']} {name}: {r['sampled_fps']} sampled fps, {r['peak_rss_mb']} MB")
    return r


def agreement(a: dict[str, str], b: dict[str, str]) -> float:
    keys = set(a) & set(b)
    return round(sum(a[k] == b[k] for k in keys) / len(keys), 4) if keys else float("nan")


# ------------------------------------------------------------------ the benchmark
def run(args) -> dict:
    inputs = make_inputs(args.quick, args.long_minutes)
    facts = {k: video_facts(v) for k, v in inputs.items() if v.is_file()}
    n = args.repeats
    native, hd = inputs["native"], inputs["hd1080"]
    fast_haar = {"haar": {"min_size": 150}}  # faces >= 150 px at 1080p, >= 50 px at 640
    R: dict[str, dict] = {}
    R["floor_native"] = best_of(n, decode_floor, "native", native)
    R["floor_1080"] = best_of(n, decode_floor, "1080p", hd)
    R["floor_1080_2t"] = best_of(n, decode_floor, "1080p, all cores", hd, one_core=False)
    R["haar_native"] = best_of(n, videmo_run, "haar_native", native)
    R["haar_1080_full"] = best_of(n, videmo_run, "haar_1080_full", hd)
    R["haar_1080_640"] = best_of(n, videmo_run, "haar_1080_640", hd, max_width=640)
    R["haar_1080_fast"] = best_of(n, videmo_run, "haar_1080_fast", hd, max_width=640,
                                  extra=fast_haar)
    R["haar_1080_faster"] = best_of(n, videmo_run, "haar_1080_faster", hd, max_width=640,
                                    extra={"haar": {"min_size": 150, "scale_factor": 1.2}})
    R["haar_1080_fast_2t"] = best_of(n, videmo_run, "haar_1080_fast_2t", hd, max_width=640,
                                     extra=fast_haar, threads=2, one_core=False)
    R["mtcnn_native"] = best_of(n, videmo_run, "mtcnn_native", native, detector="mtcnn")
    R["mtcnn_native_b1"] = videmo_run("mtcnn_native_b1", native, detector="mtcnn",
                                      extra={"mtcnn": {"batch_size": 1}})
    R["mtcnn_native_384"] = best_of(n, videmo_run, "mtcnn_native_384", native,
                                    detector="mtcnn", max_width=384)
    R["mtcnn_1080_384"] = best_of(n, videmo_run, "mtcnn_1080_384", hd, detector="mtcnn",
                                  max_width=384)
    if not args.no_peers:
        R["fer25_native"] = best_of(n, fer_run, "native", "fer25", native, mtcnn=False)
        R["fer25_1080"] = best_of(n, fer_run, "1080p", "fer25", hd, mtcnn=False)
        R["fer22_mtcnn_native"] = best_of(n, fer_run, "native", "fer22", native, mtcnn=True)
        if not args.quick:
            R["fer22_mtcnn_1080"] = fer_run("1080p", "fer22", hd, mtcnn=True)
    R["jobs1"] = videmo_run("jobs1", inputs["corpus8"], jobs=1, one_core=False)
    R["jobs2"] = videmo_run("jobs2", inputs["corpus8"], jobs=2, one_core=False)
    R["rss_1min"] = R["haar_native"]
    R["rss_long"] = videmo_run("rss_long", inputs["long"])
    R["floor_long"] = decode_floor("long", inputs["long"])
    return {"inputs": {k: str(v.relative_to(REPO)) for k, v in inputs.items()},
            "video_facts": facts, "runs": R}


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = int(open("/proc/meminfo").read().split()[1]) / 1024 ** 2
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    from videmo.runtime import versions

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1),
            "os": platform.platform(), "commit": commit + ("-dirty" if dirty else ""),
            "versions": versions()}


def input_of(run_name: str) -> str:
    """Which input a run read (run names say it: *_1080*, *long, jobs*)."""
    if run_name.endswith("long"):
        return "long"
    if run_name.startswith("jobs"):
        return "corpus8"
    return "hd1080" if "1080" in run_name else "native"


def add_cpu_per_minute(res: dict) -> None:
    """CPU seconds of the whole process per minute of the video it read."""
    minutes = {k: v["minutes"] for k, v in res["video_facts"].items()}
    minutes["corpus8"] = 8 * minutes["native"]  # eight copies of the native clip
    for name, r in res["runs"].items():
        r["cpu_s_per_video_min"] = round(r["cpu_s"] / minutes[input_of(name)], 2)


def summarise(res: dict) -> dict:
    R = res["runs"]

    def ratio(a, b, key="sampled_fps"):
        return round(R[a][key] / R[b][key], 2) if a in R and b in R else None

    add_cpu_per_minute(res)

    def agree(a, b):
        return agreement(R[a]["labels"], R[b]["labels"]) if a in R and b in R else None

    s = {
        "haar_1080_vs_fer25": ratio("haar_1080_fast", "fer25_1080"),
        "haar_1080_640_vs_fer25": ratio("haar_1080_640", "fer25_1080"),
        "haar_1080_label_agreement_vs_full": agree("haar_1080_fast", "haar_1080_full"),
        "haar_1080_640_label_agreement_vs_full": agree("haar_1080_640", "haar_1080_full"),
        "mtcnn_vs_fer22": ratio("mtcnn_native_384", "fer22_mtcnn_native"),
        "mtcnn_full_vs_fer22": ratio("mtcnn_native", "fer22_mtcnn_native"),
        "mtcnn_faces": (R["mtcnn_native_384"]["frames_with_face"],
                        R.get("fer22_mtcnn_native", {}).get("frames_with_face")),
        "mtcnn_384_label_agreement_vs_full": agree("mtcnn_native_384", "mtcnn_native"),
        "haar_native_vs_fer25": ratio("haar_native", "fer25_native"),
        "haar_native_label_agreement_vs_fer25": agree("haar_native", "fer25_native"),
        "jobs2_speedup": round(R["jobs1"]["wall_s"] / R["jobs2"]["wall_s"], 2),
        "rss_mb": (R["rss_1min"]["peak_rss_mb"], R["rss_long"]["peak_rss_mb"]),
        "rss_long_timeline_mb": R["rss_long"]["rss_timeline_mb"],
        "floor_rss_mb": (R["floor_native"]["peak_rss_mb"], R["floor_long"]["peak_rss_mb"]),
        "haar_1080_vs_floor": round(R["haar_1080_fast"]["loop_s"] / R["floor_1080"]["loop_s"],
                                    2),
        "haar_1080_faster_vs_floor": round(R["haar_1080_faster"]["loop_s"]
                                           / R["floor_1080"]["loop_s"], 2),
        "haar_1080_faster_label_agreement_vs_full": agree("haar_1080_faster", "haar_1080_full"),
        "haar_1080_2t_vs_floor": round(R["haar_1080_fast_2t"]["loop_s"]
                                       / R["floor_1080_2t"]["loop_s"], 2),
        "mtcnn_batch1_label_agreement": agree("mtcnn_native", "mtcnn_native_b1"),
    }
    if "fer22_mtcnn_1080" in R:
        s["mtcnn_1080_vs_fer22"] = ratio("mtcnn_1080_384", "fer22_mtcnn_1080")
    return s


def write_markdown(res: dict, command: str) -> str:
    R, S, M = res["runs"], res["summary"], res["machine"]
    lines = [f"# Benchmarks ({res['date']})", "",
             f"Produced by `{command}` at commit `{M['commit']}` on {M['cpu']} ({M['cores']} "
             f"cores, {M['memory_gb']} GB), {M['os']}. Raw numbers: "
             f"`{res['json']}`. Inputs are generated by the script (see its docstring); every "
             f"20th frame is analysed; one-core runs are pinned to one CPU with videmo's "
             f"`run.threads: 1`.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in M["versions"].items()
                                      if k not in ("platform",)) + ".", "",
             "| input | frames | size | minutes |", "|---|---|---|---|"]
    for k, f in res["video_facts"].items():
        lines.append(f"| {k} | {f['frames']} | {f['width']}x{f['height']} @ {f['fps']} fps | "
                     f"{f['minutes']} |")
    lines += ["", "## Runs", "",
              "`sampled fps`: sampled frames / seconds in the per-clip loop (decode + detect + "
              "score; after models are loaded, for videmo and fer alike). `CPU s / video min`: "
              "the whole process (start-up included) per minute of video. `peak RSS`: the "
              "process tree, sampled every 50 ms.", "",
              "| run | tool | detector | settings | jobs x threads | frames | with face | "
              "loop s | sampled fps | wall s | CPU s / video min | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in R.items():
        if name == "rss_1min":
            continue
        settings = ([f"max_width {r['max_width']}"] if r.get("max_width") else []) + [
            f"{k}.{kk} {vv}" for k, v in r.get("settings", {}).items() for kk, vv in v.items()]
        lines.append(
            f"| {name} | {r['tool']} | {r.get('detector', '-')} | {', '.join(settings) or '-'} "
            f"| {r.get('jobs', 1)} x {r.get('threads', 1)} | {r['frames_sampled']} | "
            f"{r.get('frames_with_face', '-')} | {r['loop_s']:.2f} | "
            f"{r.get('sampled_fps', '-')} | {r['wall_s']:.1f} | "
            f"{r.get('cpu_s_per_video_min', '-')} | {r.get('peak_rss_mb', '-')} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for row in targets(S):
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} |")
    j1, j2, fast, floor = R["jobs1"], R["jobs2"], R["haar_1080_fast"], R["floor_1080"]
    startup = j2["wall_s"] - j2["loop_s"] / 2 - (j1["wall_s"] - j1["loop_s"])
    beyond = 1000 * (fast["loop_s"] - floor["loop_s"]) / fast["frames_sampled"]
    allowed = 1000 * 0.6 * floor["loop_s"] / floor["frames_sampled"]
    lines += ["", "## Notes", "",
              "* Timings on a shared VM vary between runs (see `repeats` in the JSON); each "
              "row is the fastest of its repeats, and every ratio compares rows taken in the "
              "same run.",
              "* The long video's RSS is flat while it is decoded (the timeline above); the "
              "peak is reached at the end, when the clip's one table "
              f"({R['rss_long']['frames_sampled']:,} rows) is built and written, so it grows "
              "with the sampled frames of one clip, not with time.",
              f"* `jobs2` pays about {startup:.1f} s more start-up than `jobs1` (two worker "
              "processes importing and loading models); per-clip loop time per worker is "
              f"{j2['loop_s'] / j1['loop_s'] - 1:.0%} above one job's.",
              f"* Haar at 1080p against the decode floor: 1.6x the floor leaves {allowed:.0f} ms "
              f"per sampled frame beyond decoding; videmo's fast setting spends {beyond:.0f} ms "
              "there, nearly all in the Haar call with fer's scale factor 1.1. A coarser "
              "pyramid (scale_factor 1.2) gets closer at a cost in labels (above).",
              "* fer 22.4.0 resolves `mtcnn` to 1.0.0 today (faster than the 0.1.x the study "
              "used in 2021) and passes it BGR frames, as its users' code does."]
    lines += ["", "## GPU", ""]
    if shutil.which("nvidia-smi"):
        lines.append("This machine has an NVIDIA GPU, but the rows above ran on the CPU.")
    else:
        lines.append("No GPU on this machine, so no GPU row: rerun this script on one (with "
                     "`pip install '.[gpu]'`) to add MTCNN and the Keras engine there.")
    return "\n".join(lines) + "\n"


def targets(S: dict) -> list[tuple[str, str, str]]:
    def yes(ok):
        return "n/a" if ok is None else ("yes" if ok else "**no**")

    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    r1, agree = S["haar_1080_vs_fer25"], S["haar_1080_label_agreement_vs_full"]
    faces = S["mtcnn_faces"]
    rss1, rss60 = S["rss_mb"]
    return [
        ("Haar 1080p >= 3x fer 25.10.3 on one core, >= 95% of labels equal to full resolution "
         "(max_width 640, haar.min_size 150)", f"{r1}x; {pct(agree)}",
         yes(None if r1 is None else r1 >= 3 and agree >= 0.95)),
        ("(the same with max_width 640 alone)",
         f"{S['haar_1080_640_vs_fer25']}x; {pct(S['haar_1080_640_label_agreement_vs_full'])}",
         "-"),
        ("MTCNN >= 3x fer 22.4.0 FER(mtcnn=True) per core, faces in at least as many frames "
         "(max_width 384)",
         f"{S['mtcnn_vs_fer22']}x; faces in {faces[0]} vs {faces[1]} frames; "
         f"{pct(S['mtcnn_384_label_agreement_vs_full'])} of labels equal to full-size MTCNN",
         yes(None if S["mtcnn_vs_fer22"] is None else
             S["mtcnn_vs_fer22"] >= 3 and faces[0] >= (faces[1] or 0))),
        ("(MTCNN at full native size; batch 16 vs 1: labels equal)",
         f"{S['mtcnn_full_vs_fer22']}x; {pct(S['mtcnn_batch1_label_agreement'])}", "-"),
        ("(MTCNN at 1080p, max_width 384, vs fer 22.4.0 at 1080p)",
         f"{S.get('mtcnn_1080_vs_fer22')}x", "-"),
        ("Haar native: no slower than fer 25.10.3 (and the same labels)",
         f"{S['haar_native_vs_fer25']}x; {pct(S['haar_native_label_agreement_vs_fer25'])} "
         "labels equal", yes(None if S["haar_native_vs_fer25"] is None else
                             S["haar_native_vs_fer25"] >= 1)),
        ("--jobs 2 >= 1.8x --jobs 1 (8 clips, wall time)", f"{S['jobs2_speedup']}x",
         yes(S["jobs2_speedup"] >= 1.8)),
        ("Peak RSS < 1.5 GB and within 10% for 1 and 60 minutes (Haar)",
         f"{rss1} MB vs {rss60} MB",
         yes(max(rss1, rss60) < 1536 and abs(rss60 - rss1) <= 0.1 * rss1)),
        ("(60 minutes: RSS at 20/40/60/80/100% of the run; decode floor 1 vs 60 min)",
         f"{' / '.join(map(str, S['rss_long_timeline_mb']))} MB; floor "
         f"{S['floor_rss_mb'][0]} vs {S['floor_rss_mb'][1]} MB", "-"),
        ("Haar 1080p total <= 1.6x decode floor, one core (max_width 640, min_size 150)",
         f"{S['haar_1080_vs_floor']}x", yes(S["haar_1080_vs_floor"] <= 1.6)),
        ("(the same with 2 threads: decoding overlaps detection)",
         f"{S['haar_1080_2t_vs_floor']}x", yes(S["haar_1080_2t_vs_floor"] <= 1.6)),
        ("(one core, + haar.scale_factor 1.2: half the pyramid levels)",
         f"{S['haar_1080_faster_vs_floor']}x; "
         f"{pct(S['haar_1080_faster_label_agreement_vs_full'])} labels equal to full resolution",
         yes(S["haar_1080_faster_vs_floor"] <= 1.6)),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20-second inputs, no 1080p MTCNN peer")
    p.add_argument("--long-minutes", type=float, default=60.0,
                   help="length of the memory test video (default 60)")
    p.add_argument("--no-peers", action="store_true", help="skip fer (no venvs)")
    p.add_argument("--repeats", type=int, default=3,
                   help="runs per measurement, the fastest kept (default 3)")
    p.add_argument("--out", default=str(REPO / "BENCHMARKS.md"), help="markdown results")
    p.add_argument("--render", metavar="JSON",
                   help="only rewrite the markdown from a results file of an earlier run")
    args = p.parse_args()
    if args.render:
        res = json.loads(Path(args.render).read_text())
        add_cpu_per_minute(res)
        Path(args.render).write_text(json.dumps(res, indent=1) + "\n")
        Path(args.out).write_text(write_markdown(res, res["command"]))
        return
    command = "python bench/run.py" + "".join(
        f" {a}" for a in sys.argv[1:])
    date = dt.date.today().isoformat()
    res = run(args)
    res.update({"date": date, "machine": machine(), "command": command})
    res["summary"] = summarise(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{date}{'-quick' if args.quick else ''}.json"
    res["json"] = str(json_path.relative_to(REPO))
    slim = json.loads(json.dumps(res, default=str))
    for r in slim["runs"].values():
        r.pop("labels", None)
    json_path.write_text(json.dumps(slim, indent=1) + "\n")
    Path(args.out).write_text(write_markdown(res, command))
    for row in targets(res["summary"]):
        log(" | ".join(row))
    log(f"-> {args.out}, {json_path}")


if __name__ == "__main__":
    main()
