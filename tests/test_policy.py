"""The winner rule, the one rule every path asks which copy of an article wins: the copy ingested last
(highest ingest sequence, the document's version), then the greater path; and the dry run's writes, which
decide with it as the index does."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.policy import LATER_COPY_INDEXED, copies_by_article, document_rank, duplicate_reason, entry_rank
from pipeline.run.report import RunReport
from pipeline.run.writes import DryRunWrites
from pipeline.types import Document, SeedFile


def doc(rel: str, seq: int, article: str = "x") -> Document:
    seed = SeedFile("/r", rel, "/r", rel, 1, seq=seq)
    return Document(article, {}, seed, seq)


@dataclass(frozen=True)
class Entry:
    seq: int
    path: str


def test_the_copy_ingested_last_wins_whatever_its_path_or_the_order_met():
    copies = [doc("b.txt", 1), doc("a.txt", 3), doc("c.txt", 2)]
    for order in (copies, copies[::-1]):
        (ranked,) = copies_by_article(order).values()
        assert [d.seed.rel for d in ranked] == ["a.txt", "c.txt", "b.txt"]
    assert max([Entry(1, "b.txt"), Entry(3, "a.txt")], key=entry_rank) == Entry(3, "a.txt")


def test_between_equal_sequences_the_greater_path_wins():
    assert document_rank(doc("b.txt", 5)) > document_rank(doc("a.txt", 5))
    assert max([Entry(5, "a.txt"), Entry(5, "b.txt")], key=entry_rank).path == "b.txt"


def test_copies_of_different_articles_never_compete():
    grouped = copies_by_article([doc("a.txt", 1, "x"), doc("b.txt", 2, "y")])
    assert {k: [d.seed.rel for d in v] for k, v in grouped.items()} == {"x": ["a.txt"], "y": ["b.txt"]}


def test_the_dry_run_decides_as_the_index_does_across_chunks():
    writes, report = DryRunWrites("t", "r"), RunReport(dry_run=True)
    first = writes.index([doc("old.txt", 1), doc("newer.txt", 2)])
    assert [(o.seed.rel, o.state, o.reason) for o in first] == [
        ("newer.txt", "indexed", None),
        ("old.txt", "duplicate", duplicate_reason("newer.txt")),
    ]
    writes.record(first, report, lambda _: None)
    # a later chunk: an older copy is refused, a newer one replaces the copy held
    assert [(o.state, o.reason) for o in writes.index([doc("oldest.txt", 0)])] == [("duplicate", LATER_COPY_INDEXED)]
    last = writes.index([doc("newest.txt", 9)])
    assert [o.state for o in last] == ["indexed"]
    writes.record(last, report, lambda _: None)
    assert report.counts == {"indexed": 1, "duplicate": 2}
    assert {(b["path"], b["reason"]) for b in report.listed("duplicate")} == {
        ("old.txt", duplicate_reason("newer.txt")),
        ("newer.txt", duplicate_reason("newest.txt")),
    }
