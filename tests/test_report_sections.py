"""report.html as a list of sections (videmo.report.sections): a section defined here, and no
other module edited, is rendered with its entry in the contents; an unavailable one is absent;
the observer, classifier and face-mesh parts contribute theirs. Hand-made runs (no video)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from videmo.report import sections
from videmo.report.build import build_report
from videmo.report.html import anchor, render_report
from videmo.report.mesh import mesh_anchor
from videmo.report.sections import Section, SectionError

from .test_report import UNFINISHED, fake_run
from .test_report_html import EVENTS, annotate, assert_offline

NAV = re.compile(r"<nav>(.*?)</nav>", re.S)


def contents(page: str) -> list[tuple[str, str]]:
    """The page's table of contents: (anchor, title) of each link in the header's nav."""
    return re.findall(r'<a href="#([^"]+)">([^<]*)</a>', NAV.search(page).group(1))


def section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


@pytest.fixture
def stranger():
    """Register sections for one test and take them off the page afterwards."""
    added: list[str] = []

    def add(section: Section, **where: str) -> Section:
        sections.register(section, **where)
        added.append(section.anchor)
        return section

    yield add
    for a in added:
        sections.unregister(a)


def test_a_section_defined_in_a_test_is_rendered_in_its_place(tmp_path, stranger):
    def context(report, cfg):
        return {"n": len(report.clips), "clips": list(report.clips["filename"]),
                "aggregate": cfg.report.aggregate}

    stranger(Section("clip-names", "Clip names <all>", source=(
        "<p class=\"stranger\">{{ n }} clips by {{ aggregate }}: {{ clips | join(', ') }}</p>"
        "<p>{{ 0.25 | pct }}</p>"), context=context), after="groups")
    run, cfg = fake_run(tmp_path)
    rep = build_report(run, cfg)
    page_path = rep.out_dir / "report.html"
    assert_offline(page_path)  # its contents link resolves to its section
    page = page_path.read_text()
    assert ("clip-names", "Clip names &lt;all&gt;") in contents(page)  # the title, escaped
    body = page[page.index('<section id="clip-names">'):]
    body = body[:body.index("</section>")]
    assert "<h2>Clip names &lt;all&gt;</h2>" in body
    assert f'<p class="stranger">{len(UNFINISHED)} clips by {cfg.report.aggregate}: ' \
        f'{", ".join(sorted(UNFINISHED))}</p>' in body and "<p>25.0%</p>" in body
    ids = section_ids(page)
    assert ids[ids.index("groups") + 1] == "clip-names"  # after= places it
    # the contents list the sections in page order, and only those
    assert [a for a, _ in contents(page)] == ids == [s.anchor for s in sections.sections_of(rep)]


def test_a_section_that_is_not_available_is_absent(tmp_path, stranger):
    stranger(Section("never-here", "Never here", source="<p>never rendered {{ nothing }}</p>",
                     available=lambda report: False), before="corpus")
    stranger(Section("two-clips", "Only with two clips", source="<p>two</p>",
                     available=lambda report: len(report.clips) == 2))
    run, cfg = fake_run(tmp_path)
    rep = build_report(run, cfg)
    page = (rep.out_dir / "report.html").read_text()
    assert "never-here" not in page and "Never here" not in page
    assert "two-clips" not in page and "<p>two</p>" not in page
    # the contributed sections need their part: no observer events, classifier or mesh here
    ids = section_ids(page)
    assert not {"observers", "classifier", "face-mesh"} & set(ids)
    assert {"corpus", "metrics", "class-metrics", "confusion-matrix", "groups", "clip-list",
            "timelines", "provenance"} <= set(ids)
    # without golden labels, the per-class and confusion sections have nothing to show
    plain = fake_run(tmp_path / "unlabelled", labels=None)[0]
    text = (build_report(plain, plain.config()).out_dir / "report.html").read_text()
    assert {"class-metrics", "confusion-matrix"}.isdisjoint(section_ids(text))
    assert "No golden labels" in text


def test_the_observers_section_comes_with_the_events(tmp_path):
    run, cfg = fake_run(tmp_path, timeline_clips=0)
    annotate(run.path, EVENTS)
    page = (build_report(run, cfg).out_dir / "report.html").read_text()
    assert ("observers", "Observer events") in contents(page)
    ids = section_ids(page)
    assert ids.index("groups") < ids.index("observers") < ids.index("clip-list")


def test_the_classifier_and_mesh_sections_show_their_parts(tmp_path):
    """A report labelled by a classifier, with a blendshape figure (the metrics and figures
    build records for report.classifier and features: mesh), renders both sections."""
    run, cfg = fake_run(tmp_path, figures=True, timeline_clips=1)
    rep = build_report(run, cfg)
    png = next(iter(rep.figures.timelines.values()))  # any PNG will do as the mesh figure
    rep.metrics = dataclasses.replace(rep.metrics, classifier={
        "path": "models/logistic-7", "classifier": "logistic", "features": "fer+blendshapes"})
    rep.figures.blendshapes = {"a_1": png, "a_2": png}
    page = render_report(rep, cfg)
    ids = section_ids(page)
    assert ids.index("observers" if "observers" in ids else "groups") < ids.index("classifier") \
        < ids.index("clip-list") < ids.index("timelines") < ids.index("face-mesh")
    assert ("classifier", "Classifier") in contents(page)
    assert ("face-mesh", "Face mesh") in contents(page)
    cls = page[page.index('<section id="classifier">'):page.index('<section id="clip-list">')]
    for text in ("logistic", "fer+blendshapes", "models/logistic-7", cfg.report.aggregate):
        assert f"<td>{text}</td>" in cls or text in cls
    mesh = page[page.index('<section id="face-mesh">'):]
    assert mesh.count("blendshapes over time of") == 2
    # a_1 has an emotion timeline to link back to; a_2 (timeline_clips: 1) has none
    assert f'href="#{anchor("a_1")}"' in mesh and f'href="#{anchor("a_2")}"' not in mesh
    assert f'id="{mesh_anchor("a_1")}"' in mesh and f'id="{mesh_anchor("a_2")}"' in mesh


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"anchor": "two words", "title": "t", "source": ""}, "not an element id"),
    ({"anchor": "x", "title": "t"}, "not neither"),
    ({"anchor": "x", "title": "t", "source": "", "template": "a.html"}, "not both"),
])
def test_a_section_without_an_id_or_a_template_is_refused(kwargs, message):
    with pytest.raises(SectionError, match=message):
        Section(**kwargs)


def test_the_registry_refuses_a_taken_anchor_and_an_unknown_place(stranger):
    with pytest.raises(SectionError, match="'corpus' is taken"):
        sections.register(Section("corpus", "Again", source=""))
    with pytest.raises(SectionError, match="no section 'nowhere'; registered: corpus, "):
        sections.register(Section("fresh", "Fresh", source=""), after="nowhere")
    assert "fresh" not in [s.anchor for s in sections.registered()]
