"""Rebuild the person-held-out split of facial_expressions (data/splits/facial_expressions/).

Drops every photo of the people in the evaluation identities file (the project's independent
evaluation: never trained, selected, calibrated or scored on), then splits the rest by person
(:func:`videmo.train.real_photos.split_people`, seed 0): train.txt, selection.txt, test.txt (file
names only) and summary.json (counts per split and class, the people and photos dropped).

    python scripts/split_real_photos.py /tmp/realfaces/data/legend.csv \\
        ../shared/data/evaluation-identities.txt
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

from videmo.train import real_photos as rp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("legend", type=Path, help="facial_expressions' data/legend.csv")
    ap.add_argument("identities", type=Path, help="evaluation-identities.txt (people to drop)")
    ap.add_argument("--out", type=Path, default=rp.SPLITS)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows = rp.load_legend(args.legend)
    excluded = rp.read_identities(args.identities)
    drop = {p for p in {r["person"] for r in rows} if rp.is_excluded(p, excluded)}
    kept = [r for r in rows if r["person"] not in drop]
    splits = rp.split_people(kept, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    label = {r["image"]: r["label"] for r in kept}
    person = {r["image"]: r["person"] for r in kept}
    summary = {
        "command": " ".join(["python scripts/split_real_photos.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "seed": args.seed,
        "photos": len(rows),
        "identities_listed": len(excluded),
        "people_dropped": len(drop),
        "photos_dropped": len(rows) - len(kept),
        "splits": {},
    }
    for name, ids in splits.items():
        (args.out / f"{name}.txt").write_text("".join(i + "\n" for i in ids))
        summary["splits"][name] = {
            "photos": len(ids), "people": len({person[i] for i in ids}),
            "classes": dict(sorted(collections.Counter(label[i] for i in ids).items())),
        }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
