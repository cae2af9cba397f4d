"""The ledger is cheap for the node, against a REAL OpenSearch node: a re-run with nothing changed writes no
entry, an entry identical to the stored one is not written again, and a ledger made from an earlier
template (every field indexed, ``reason`` analysed) keeps working until a full rebuild gives it the lean
mapping."""

from __future__ import annotations

import os
import shutil

from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.run.outcomes import settle
from pipeline.run.report import RunReport
from pipeline.sources.folder import FolderSource
from pipeline.stores.indices import load_template
from pipeline.stores.ledger import LEDGER_TEMPLATE, Ledger
from pipeline.types import SeedFile, SeedOutcome, entry_key
from tests.conftest import DATA

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/{name}"\n---\n'
OLD_MTIME = 1_000  # seconds: far from any hash time, so no fingerprint is racily clean

# the ledger mapping before the lean template: every field indexed with doc values, ``reason`` analysed
EARLIER = {
    "dynamic": "strict",
    "properties": {
        **{name: {"type": "keyword"} for name in ("root", "path", "sha256", "state", "stage", "doc_id", "orphans")},
        **{name: {"type": "keyword"} for name in ("target", "run_id", "key")},
        **{name: {"type": "long"} for name in ("size", "mtime_ns", "ctime_ns", "ino", "seq")},
        "reason": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
        "attempts": {"type": "integer"},
        "updated_at": {"type": "date"},
    },  # no ``hashed_ns``: a field the template added later
}


def _write(folder, name, title="T"):
    path = folder / name
    path.write_text(SEED.format(title=title, name=name), encoding="utf-8")
    os.utime(path, (OLD_MTIME, OLD_MTIME))


def _run(settings, client, folder, **kw):
    kw.setdefault("check_images", False)
    return run(settings, RunOptions(seed_dir=str(folder), **kw), client=client, emit=lambda _: None)


def _writes(client, index: str) -> int:
    """Index and update operations the ledger's primary shards have taken so far."""
    stats = client.indices.stats(index=index, metric="indexing")["_all"]["primaries"]["indexing"]
    return int(stats["index_total"])


def _properties(client, index: str) -> dict:
    (mapping,) = client.indices.get_mapping(index=index).values()
    return mapping["mappings"]["properties"]


def test_a_rerun_with_nothing_changed_writes_no_ledger_entry(settings, client, tmp_path, monkeypatch):
    for name in ("a.txt", "b.txt", "gone.txt"):
        _write(tmp_path, name, name)
    shutil.copy(DATA / "seeds" / "bad" / "missing_title.txt", tmp_path / "bad.txt")
    os.utime(tmp_path / "bad.txt", (OLD_MTIME, OLD_MTIME))
    (tmp_path / "odd\nname.txt").write_text("x", encoding="utf-8")  # refused by discovery
    assert _run(settings, client, tmp_path).indexed == 3
    (tmp_path / "gone.txt").unlink()
    assert _run(settings, client, tmp_path).n("deleted") == 1

    # the files' ctime is seconds old: their fingerprints are racily clean until they age past the source's
    # timestamp granularity, and each run records the stat it hashed again; here they have aged
    monkeypatch.setattr(FolderSource, "racy_window_ns", 0)
    assert _run(settings, client, tmp_path).counts == {"unchanged": 4}
    before = _writes(client, settings.ledger_index)
    report = _run(settings, client, tmp_path)
    assert report.counts == {"unchanged": 4}
    assert _writes(client, settings.ledger_index) == before  # not one entry written, not even a timestamp


def test_an_entry_identical_to_the_stored_one_is_not_written_again(settings, client, tmp_path):
    _write(tmp_path, "a.txt")
    _run(settings, client, tmp_path)
    ledger = Ledger(client, settings.ledger_index)
    key = entry_key(str(tmp_path), "a.txt")
    stored = ledger.lookup([key])[key]
    seed = SeedFile(
        stored.root, "a.txt", str(tmp_path), "a.txt", stored.size, stored.mtime_ns, stored.ctime_ns, stored.ino,
        stored.sha256, stored.seq, stored.hashed_ns,
    )  # fmt: skip
    outcome = SeedOutcome(seed, "indexed", "index", None, stored.doc_id)

    def settle_again(run_id: str) -> int:
        before = _writes(client, settings.ledger_index)
        settle([outcome], ledger=ledger, report=RunReport(), run_id=run_id, target=stored.target or "")
        return _writes(client, settings.ledger_index) - before

    assert settle_again(stored.run_id or "") == 0  # a retried task settling the same outcome
    assert settle_again("another-run") == 1  # which run settled it is part of the entry
    assert ledger.lookup([key])[key].run_id == "another-run"


def test_a_ledger_from_an_earlier_template_works_until_a_rebuild_makes_it_lean(settings, client, tmp_path):
    _write(tmp_path, "a.txt", "first")
    _write(tmp_path, "b.txt", "bee")
    _run(settings, client, tmp_path)
    (lean,) = client.indices.get_alias(name=settings.ledger_index)
    earlier = f"{settings.index_base}-earlier-ledger"  # outside the template's pattern: the mapping is its own
    client.indices.create(index=earlier, body={"mappings": EARLIER})
    client.reindex(
        body={
            "source": {"index": lean},
            "dest": {"index": earlier},
            "script": {"source": "ctx._source.remove('hashed_ns')"},
        },
        refresh=True,
    )
    client.indices.update_aliases(
        body={
            "actions": [
                {"remove": {"index": lean, "alias": settings.ledger_index}},
                {"add": {"index": earlier, "alias": settings.ledger_index, "is_write_index": True}},
            ]
        }
    )

    _write(tmp_path, "a.txt", "second")
    os.utime(tmp_path / "a.txt", (OLD_MTIME + 1, OLD_MTIME + 1))
    report = _run(settings, client, tmp_path)  # the earlier ledger is read and written as it is
    assert (report.indexed, report.unchanged) == (1, 1)
    props = _properties(client, earlier)
    assert props["path"] == {"type": "keyword"} and props["reason"]["type"] == "text"  # its fields keep theirs
    assert props["hashed_ns"] == {"type": "long", "index": False}  # the missing field, added from the template
    assert Ledger(client, settings.ledger_index).counts(str(tmp_path)) == {"indexed": 2}

    assert _run(settings, client, tmp_path, full_rebuild=True).indexed == 2
    (rebuilt,) = client.indices.get_alias(name=settings.ledger_index)
    assert rebuilt != earlier
    template = load_template(LEDGER_TEMPLATE)["template"]["mappings"]["properties"]
    assert _properties(client, rebuilt) == template  # the lean mapping, from a full rebuild


def test_an_operator_finds_a_files_entry_by_its_path(settings, client, tmp_path):
    """``path`` is not indexed, but has doc values: Discover's ``path:"…"`` and ``path:sub/*`` still answer."""
    (tmp_path / "2024").mkdir()
    _write(tmp_path / "2024", "a b.txt")
    _write(tmp_path, "c.txt")
    _run(settings, client, tmp_path)
    client.indices.refresh(index=settings.ledger_index)
    for query in ({"term": {"path": "2024/a b.txt"}}, {"wildcard": {"path": "2024/*"}}):
        hits = client.search(index=settings.ledger_index, body={"query": query})["hits"]["hits"]
        assert [h["_source"]["path"] for h in hits] == ["2024/a b.txt"], query
