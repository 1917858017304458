"""Start-up of each command (issue 32, item 5): wall and CPU seconds, peak RSS of the process tree.

    python bench/startup.py --repeats 5 [--baseline-src DIR]

Fresh processes, all cores allowed, in rounds (each command once per round): ``videmo --help``,
``videmo config --template``, ``videmo extract`` of one sample clip (``--force``, every 15th
frame, the defaults: Haar, pixels_real, every core) and ``videmo status RUN`` on that run.
``--baseline-src``: the same with another checkout's ``src`` in the same rounds. JSON to
bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402

CLIP = harness.REPO / "data" / "sample" / "crema-d" / "1001_DFA_HAP_XX.flv"


def commands(work: Path) -> dict[str, list[str]]:
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    if not (corpus / CLIP.name).exists():
        (corpus / CLIP.name).symlink_to(CLIP)
    cfg = work / "config.yaml"
    cfg.write_text(json.dumps({"corpus": {"paths": [str(corpus)]},
                               "sampling": {"every_n": 15}, "run": {"out": str(work / "run")}}))
    v = [sys.executable, "-m", "videmo"]
    return {"videmo --help": [*v, "--help"],
            "videmo config --template": [*v, "config", "--template"],
            "videmo extract (one sample clip)": [*v, "-q", "extract", str(cfg), "--force",
                                                 "--no-progress"],
            "videmo status RUN": [*v, "status", str(work / "run")]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--baseline-src")
    p.add_argument("--out", default=str(harness.REPO / "bench" / "results" / "startup.json"))
    args = p.parse_args()
    codes = [("new", None)] + ([("base", args.baseline_src)] if args.baseline_src else [])
    result = {"machine": {**harness.machine(), "bytecode": harness.byte_compile(
        *([args.baseline_src] if args.baseline_src else []))}, "rows": {}}
    raw: dict[str, list] = {}
    for _ in range(args.repeats):
        for code, src in codes:
            for name, cmd in commands(harness.WORK / "startup" / code).items():
                r = harness.timed(cmd, one_core=False,
                                  env={"PYTHONPATH": src} if src else None)
                raw.setdefault(f"{code}: {name}", []).append(r)
    for key, runs in raw.items():
        result["rows"][key] = {"wall_s": harness.stats([r["wall_s"] for r in runs]),
                               "cpu_s": harness.stats([r["cpu_s"] for r in runs]),
                               "peak_rss_mb": harness.stats([r["peak_rss_mb"] for r in runs])}
    result["load_after"] = list(__import__("os").getloadavg())
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for key, row in result["rows"].items():
        print(f"{key:45s} wall {row['wall_s']}  cpu {row['cpu_s']}  rss {row['peak_rss_mb']}")


if __name__ == "__main__":
    main()
