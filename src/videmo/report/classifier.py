"""The learned classifier's section of report.html (``videmo report --classifier``).

With ``report.classifier`` a model of ``videmo learn`` labels every clip with a face instead of
``report.aggregate``'s vote; :data:`CLASSIFIER` says so on the page, with the model's name, the
features it reads and where it was loaded from (metrics.json's ``classifier``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videmo.report.sections import Section
from videmo.report.tables import key_value_table

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report


def classifier_context(report: Report, cfg: Config) -> dict[str, Any]:
    cls = report.metrics.classifier or {}
    return {"classifier": key_value_table("classifier", [
        ("classifier", cls.get("classifier", "")), ("features", cls.get("features", "")),
        ("model", cls.get("path", "")), ("instead of", f"report.aggregate: "
                                                      f"{cfg.report.aggregate}")])}


CLASSIFIER = Section("classifier", "Classifier", "sections/classifier.html",
                     context=classifier_context,
                     available=lambda report: report.metrics.classifier is not None)
