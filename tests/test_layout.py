"""The layout shows the design: one error tree, modules of a readable size, a README that names every
module of the tree (a newcomer reads the design from the README's table and finds the same files)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pipeline
from pipeline import errors
from tests.conftest import ROOT

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")
    if m.name not in ("pipeline.__main__",) and not m.name.startswith(("pipeline.mappings", "pipeline.savedobjects"))
)
#: exceptions that are deliberately outside the tree (see pipeline.errors' docstring)
OUTSIDE_THE_TREE = {"pipeline.safety.yamlsafe", "pipeline.safety.netsafe"}
MAX_LINES = 400


def test_every_public_exception_is_in_the_one_tree():
    stray = []
    for name in MODULES:
        if name in OUTSIDE_THE_TREE:
            continue
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == name
                and not attr.startswith("_")
                and not issubclass(obj, errors.SeedNewsError)
            ):
                stray.append(f"{name}.{attr}")
    assert not stray, f"exceptions outside pipeline.errors' tree: {stray}"
    documented = {"SeedNewsError", *re.findall(r"[├└]── (\w+)", errors.__doc__ or "")}
    defined = {n for n, o in vars(errors).items() if inspect.isclass(o) and issubclass(o, BaseException)}
    assert defined == documented, "the docstring's tree and the classes differ"


def test_long_modules_say_why_at_the_top():
    for path in list((ROOT / "pipeline").rglob("*.py")) + list((ROOT / "devtools").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "on purpose" in doc.split("\n\n")[1 if "\n\n" in doc else 0], (
                f"{path.relative_to(ROOT)} has {text.count(chr(10))} lines and no reason at its top"
            )


def test_readme_module_table_matches_the_tree():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## What you get") :]
    table = table[: table.index("\n## ", 5)]
    named = set(re.findall(r"`(pipeline/[\w/]+\.py|pipeline/[\w/]+/)`", table))
    files = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "pipeline").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    packages = {
        str(p.parent.relative_to(ROOT)) + "/"
        for p in (ROOT / "pipeline").rglob("__init__.py")
        if p.parent != ROOT / "pipeline"
    }
    listed = {f for f in files if f in named or any(f.startswith(pkg) for pkg in named if pkg.endswith("/"))}
    assert files == listed, f"modules the README's table does not name: {sorted(files - listed)}"
    gone = {n for n in named if n not in files and n not in packages}
    assert not gone, f"the README names modules that do not exist: {sorted(gone)}"


# ----------------------------------------------------------------------------- floors
def test_imports_point_down_and_never_circle():
    """The layering (devtools/imports.py FLOORS): stages import nothing from run/, stores/ or sources/;
    sources nothing from run/, stores/ or stages/; stores nothing from run/; and no two modules import
    each other, directly or through others (lazy imports inside functions included)."""
    from devtools import imports

    summary = imports.summarize(imports.build(ROOT))
    assert summary.up == [], "imports that run up a floor"
    assert summary.siblings == [], "imports between stages/ and sources/"
    assert summary.circles == [], "modules that import each other"


def test_every_module_stands_on_a_named_floor():
    from devtools import imports

    graph = imports.build(ROOT)
    named = [n for floor in imports.FLOORS for n in floor]
    stray = [m for m in graph.modules if not any(m == n or m.startswith(n + ".") for n in named)]
    assert stray == [], "modules devtools/imports.py FLOORS does not place"


def test_the_floor_check_sees_an_import_up_a_sibling_and_a_circle(tmp_path):
    from devtools import imports

    files = {
        "pipeline/__init__.py": "",
        "pipeline/types.py": "",
        "pipeline/stages/__init__.py": "",
        "pipeline/stages/parse.py": "def f():\n    from pipeline.run import flow\n",
        "pipeline/stages/norm.py": "from pipeline.sources.folder import walk\n",
        "pipeline/sources/__init__.py": "",
        "pipeline/sources/folder.py": "from . import s3\n",
        "pipeline/sources/s3.py": "from pipeline.sources.folder import walk\n",
        "pipeline/run/__init__.py": "",
        "pipeline/run/flow.py": "from pipeline.stages import parse\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    summary = imports.summarize(imports.build(tmp_path))
    assert summary.up == ["pipeline.stages.parse -> pipeline.run.flow"]
    assert summary.siblings == ["pipeline.stages.norm -> pipeline.sources.folder"]
    assert summary.circles == [
        ["pipeline.run.flow", "pipeline.stages.parse"],
        ["pipeline.sources.folder", "pipeline.sources.s3"],
    ]
