import os

import pytest

from pipeline.errors import SeedRootError
from pipeline.run.plan import make_batches
from pipeline.sources.folder import discover, is_seed_name


@pytest.mark.parametrize("name", ["000_9af88004a1e871b6.txt", "a.md"])
def test_seed_names(name):
    assert is_seed_name(name)


@pytest.mark.parametrize(
    "name", [".hidden.txt", "a.txt~", ".a.txt.swp", "#a.txt#", "a.json", "a.txt.tmp", "a.txt.part"]
)
def test_not_seed_names(name):
    assert not is_seed_name(name)


def test_discover_skips_hidden_editor_and_outside_links(tmp_path):
    root = tmp_path / "seeds"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("x")
    (root / "sub" / "b.txt").write_text("y")
    (root / ".git" / "c.txt").write_text("z")
    (root / "a.txt~").write_text("x")
    (root / ".a.txt.swp").write_text("x")
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read")
    os.symlink(outside, root / "escape.txt")
    os.symlink(root / "a.txt", root / "inside-link.txt")
    seeds, refused = discover(root)
    assert [s.rel for s in seeds] == ["a.txt", "inside-link.txt", "sub/b.txt"]
    assert [(os.path.basename(q.path), q.stage, q.reason) for q in refused] == [
        ("escape.txt", "discover", "symbolic link points outside the seed folder")
    ]


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(SeedRootError, match="does not exist or is not a folder"):
        discover(tmp_path / "nope")


def test_make_batches():
    paths = [f"p{i}" for i in range(10)]
    batches = make_batches(paths, 4)
    assert [len(b) for b in batches] == [3, 3, 2, 2]
    assert [p for b in batches for p in b] == paths
    assert make_batches(paths[:2], 4) == [["p0"], ["p1"]]
    assert make_batches([], 4) == []
