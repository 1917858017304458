"""The house's layering, read from the code: every import of every module of src/videmo
(imports inside functions count too), checked against the rules of issue 22 (item 9)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "videmo"

# (importing package or module, forbidden package or module, why)
RULES = [
    ("videmo.evaluate", "videmo.report", "evaluation is below the report"),
    ("videmo.evaluate", "videmo.execute", "evaluation maps no work"),
    ("videmo.extract", "videmo.execute", "the unit of work knows no mapper"),
    ("videmo.extract", "videmo.store", "extraction returns results; executors store them"),
    ("videmo.extract", "videmo.evaluate", "extraction is below evaluation"),
    ("videmo.store", "videmo.extract", "the store's types are the schema's"),
    ("videmo.report", "videmo.execute", "a report only reads finished runs"),
    ("videmo.report.html", "videmo.report.build", "renderers read the report model"),
    ("videmo.report.model", "videmo.report.build", "the model is below its builder"),
    ("videmo.registry", "videmo", "a registry names parts: it imports none of them"),
    ("videmo.config", "videmo.execute", "the config reads registries, it runs nothing"),
    ("videmo.config", "videmo.extract", "the config names registries by reference, it imports "
                                        "no stage (the extract key is assembled in extract/)"),
    ("videmo.config", "videmo.evaluate", "the config is below evaluation"),
    ("videmo.config", "videmo.store", "the config is below the run directory"),
    ("videmo.config", "videmo.report", "the config is below the report"),
    ("videmo.store.files", "videmo.store.locks", "atomic files are below the locks"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Every videmo module or name imported anywhere in the file (``from a import b``: both
    ``a`` and ``a.b``, since b may be a module); relative imports resolved from ``package``
    (by default the file's own)."""
    out = set()
    if package is None:
        package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" \
            else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in out if n == "videmo" or n.startswith("videmo.")}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(SRC.rglob("*.py"))}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_reader_sees_imports_inside_functions_and_relative_ones(tmp_path):
    f = tmp_path / "mod.py"
    f.write_text("import os\nfrom videmo import schema\n\ndef f():\n"
                 "    from videmo.execute.local import extract\n"
                 "    import videmo.store\n    from ..evaluate import stats\n")
    got = imports_of(f, "videmo.report")
    assert got >= {"videmo.schema", "videmo.execute.local", "videmo.execute.local.extract",
                   "videmo.store", "videmo.evaluate.stats"}
    assert "os" not in got


@pytest.mark.parametrize(("source", "target", "why"), RULES,
                         ids=[f"{s}-x-{t}" for s, t, _ in RULES])
def test_layering_holds(source, target, why):
    bad = sorted(f"{m} imports {n}" for m, names in graph().items() if within(m, source)
                 for n in names if within(n, target))
    assert not bad, f"{why}: " + "; ".join(bad)
