"""run.json: whether a writer may trust it, its history of invocations, and the words for what
differs between two extract keys."""

from __future__ import annotations

import json
import logging
from typing import Any

from videmo.store.integrity import DamagedRunError, record_intact

log = logging.getLogger("videmo.store")


def trusted_meta(run) -> dict[str, Any] | None:
    """run.json as a writer may trust it: None for a new run; for an edited or unreadable one
    (in a folder with clip records, so made by videmo) a stand-in without an extract hash, so
    that the run is rewritten for the new config and the records decide what is redone."""
    try:
        meta = run.read_meta()
    except DamagedRunError as e:
        if not run.clips.is_dir():  # not a run videmo made: leave it alone
            raise
        meta = {"damaged": str(e)}
    if meta and (meta.get("damaged") or not record_intact(meta)):
        log.warning("%s was damaged or edited after it was written: it is rewritten for this "
                    "config, and every clip of another config is redone", run.run_json)
        meta = {"created": meta.get("created"), "extract_hash": None, "history": []}
    return meta


def history_of(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's invocations; a run.json from before the history kept only the last one."""
    if "history" in meta:
        return list(meta["history"])
    if not meta:
        return []
    return [{"command": meta.get("command", ""), "time": meta.get("updated"),
             "host": meta.get("host"), "extract_hash": meta.get("extract_hash"),
             "versions": meta.get("versions")}]


def key_difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """Which extract-key entries differ, e.g. 'sampling.every_n: 20 -> 15'."""
    if not isinstance(old, dict):
        return "the run predates recorded extract keys (made by an older videmo)"

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[prefix + k] = v
        return out

    a, b = flat(old), flat(json.loads(json.dumps(new, default=str)))
    diffs = [f"{k}: {a.get(k, '(none)')} -> {b.get(k, '(none)')}"
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
    return f"differs in {shown}" if diffs else "same keys, other hash"
