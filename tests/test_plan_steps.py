"""Planning's pure steps, without a node: how a move is told from a deletion, which ingest sequence each
file gets (it decides which copy of an article readers see) and what the vanish guard counts."""

from __future__ import annotations

import pytest

from pipeline.errors import VanishedFolderError
from pipeline.run.options import VanishGuard
from pipeline.run.plan import check_gone, find_moves, number
from pipeline.stores.ledger import LedgerEntry
from pipeline.types import SeedFile

ROOT = "/seeds"
BASE = 1_000


def seed(rel: str, sha: str, seq: int = 0, mtime_ns: int = 1) -> SeedFile:
    return SeedFile(ROOT, rel, ROOT, rel, 10, mtime_ns, mtime_ns, 1, sha, seq)


def gone(path: str, sha: str, seq: int) -> LedgerEntry:
    return LedgerEntry(ROOT, path, "indexed", sha256=sha, seq=seq, doc_id=f"doc-{path}")


def test_moved_content_keeps_the_sequence_of_its_newest_vanished_copy():
    vanished = [gone("a.txt", "A", 5), gone("copy-of-a.txt", "A", 7), gone("b.txt", "B", 9)]
    todo = [seed("2025/a.txt", "A"), seed("b.txt", "B", seq=3), seed("c.txt", "C", mtime_ns=2)]
    moves = find_moves(vanished, todo)
    assert moves.at == {"A": [0]}  # b.txt is known at its path: not a move, whatever its content
    number(todo, moves, BASE)
    assert [s.seq for s in todo] == [7, 3, BASE]


def test_moved_and_edited_content_is_new_and_numbered_by_mtime_then_path():
    todo = [seed("z.txt", "A2", mtime_ns=5), seed("y.txt", "Y", mtime_ns=5), seed("x.txt", "X", mtime_ns=9)]
    moves = find_moves([gone("a.txt", "A", 5)], todo)
    assert moves.files == 0
    number(todo, moves, BASE)
    assert [s.seq for s in todo] == [BASE + 1, BASE, BASE + 2]


def test_the_guard_counts_only_content_that_is_gone():
    guard = VanishGuard(share=0.2, min_files=2)
    vanished = [gone(f"{i}.txt", f"sha{i}", i + 1) for i in range(10)]
    archived = [seed(f"2025/{i}.txt", f"sha{i}") for i in range(10)]
    check_gone(guard, vanished, find_moves(vanished, archived), 10, ROOT)  # all moved: nothing raised
    with pytest.raises(VanishedFolderError, match=r"7 of the 10 .* 3 more moved within it"):
        check_gone(guard, vanished, find_moves(vanished, archived[:3]), 10, ROOT)
