"""The report page as a list of sections (MNE Report's idea: each part contributes its section).

A :class:`Section` is a title, an element id, a test of whether the report has anything to show
in it, a context made from the :class:`~videmo.report.model.Report` and the config, and a
Jinja2 partial that renders that context. ``report.html`` knows sections, not the keys of any of
them: it loops over :func:`sections_of` the report, builds its table of contents from their
titles and wraps each body in ``<section id=ANCHOR><h2>TITLE</h2> ... </section>``.

The order of the page is the order of the registry. :mod:`videmo.report.html` registers the
built-in sections (corpus, metrics, per class, confusion, groups, recordings, observer events,
classifier, clips, timelines, face mesh, options and versions); a new part of the report is
one module that defines a Section and one :func:`register` call (``after=`` / ``before=`` an
anchor places it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from videmo.registry import Registry

if TYPE_CHECKING:
    import jinja2

    from videmo.config import Config
    from videmo.report.model import Report

ANCHOR = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class SectionError(ValueError):
    """A section that cannot be registered (a bad or taken anchor, no template)."""


def always(report: Report) -> bool:
    return True


def no_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Section:
    """One part of report.html.

    ``template`` names a partial under report/templates/ (``sections/corpus.html``); a section
    defined outside the package gives its partial's text as ``source`` instead. The partial is
    rendered with ``context(report, cfg)`` in the page's environment (autoescaped, strict: a
    name the context lacks is an error, not an empty string; the ``pct`` filter and
    ``_macros.html``'s ``data_table`` and ``figure`` are there). ``available(report)`` false:
    the section and its entry in the contents are left out.
    """

    anchor: str
    title: str
    template: str | None = None
    source: str | None = None
    context: Callable[[Report, Config], dict[str, Any]] = no_context
    available: Callable[[Report], bool] = always

    def __post_init__(self) -> None:
        if not ANCHOR.match(self.anchor):
            raise SectionError(f"section {self.title!r}: anchor {self.anchor!r} is not an "
                               "element id (a letter, then letters, digits, '-' or '_')")
        if (self.template is None) == (self.source is None):
            raise SectionError(f"section {self.anchor!r}: give either template (a file under "
                               "report/templates/) or source (the partial's text), not "
                               f"{'both' if self.template else 'neither'}")

    def render(self, env: jinja2.Environment, report: Report, cfg: Config) -> Markup:
        """The section's body (its partial rendered with its context), as markup."""
        template = env.get_template(self.template) if self.template is not None \
            else env.from_string(self.source or "")
        return Markup(template.render(**self.context(report, cfg)))


# the page, in order: anchor -> Section (one Registry kind for every pluggable part)
SECTIONS = Registry("report section")


def _known(anchor: str) -> None:
    if anchor not in SECTIONS:
        raise SectionError(f"no section {anchor!r}; registered: "
                           f"{', '.join(SECTIONS) or 'none'}")


def register(section: Section, *, after: str | None = None,
             before: str | None = None) -> Section:
    """Add ``section`` to the page: last, or right after / before the section of that anchor."""
    if section.anchor in SECTIONS:
        raise SectionError(f"section anchor {section.anchor!r} is taken; choose another")
    if after is not None and before is not None:
        raise SectionError(f"section {section.anchor!r}: give after or before, not both")
    for anchor in (after, before):
        if anchor is not None:
            _known(anchor)
    return SECTIONS.register(section.anchor, section, after=after, before=before)


def unregister(anchor: str) -> Section:
    """Take the section of ``anchor`` off the page (and return it)."""
    _known(anchor)
    return SECTIONS.pop(anchor)


def registered() -> list[Section]:
    """Every registered section, in page order."""
    return SECTIONS.values()


def sections_of(report: Report) -> list[Section]:
    """The sections this report has something for, in page order."""
    return [s for s in SECTIONS.values() if s.available(report)]
