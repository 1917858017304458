"""``report.aggregate``'s registry: how a clip's frame labels become its label, by name.

The votes live in :mod:`videmo.evaluate.vote`, the expressive-frame rules in
:mod:`videmo.evaluate.rules`; both work on pandas tables, so the registry names them by
reference: reading a config (every command, the extraction's workers and array tasks too)
imports neither, nor pandas. ``videmo.evaluate.vote.AGGREGATES`` is this registry.
"""

from __future__ import annotations

from videmo.registry import Registry

AGGREGATES = Registry("clip aggregate (report.aggregate)", {
    "majority": "videmo.evaluate.vote:by_majority",
    "mean": "videmo.evaluate.vote:by_mean",
    "interval": "videmo.evaluate.vote:by_intervals",
    "expressive": "videmo.evaluate.rules:EXPRESSIVE",
    "confident": "videmo.evaluate.rules:CONFIDENT",
    "peak": "videmo.evaluate.rules:PEAK",
})
