"""A batch's chunks overlap: chunk k is written (bulk, then ledger) by a writer thread while chunk k+1 is
parsed. Against the REAL test node: the overlapped run leaves exactly what the sequential one leaves,
an error in a write stops the batch at the next chunk boundary with the ledger exact up to the last
chunk that landed, and a re-run converges.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from pipeline.run import flow
from pipeline.run.flow import RunOptions, run
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger
from tests import faultkit as fk

QUIET = lambda _msg: None  # noqa: E731


def ledger_states(client, settings, root: str) -> dict[str, tuple[str, str | None]]:
    ledger = Ledger(client, settings.ledger_index)
    ledger.refresh()
    hits = client.search(
        index=settings.ledger_index,
        body={"size": 10_000, "query": {"term": {"root": root}}, "_source": ["path", "state", "doc_id"]},
    )["hits"]["hits"]
    return {h["_source"]["path"]: (h["_source"]["state"], h["_source"].get("doc_id")) for h in hits}


def index_sources(client, alias: str) -> dict[str, str]:
    indices.refresh(client, alias)
    hits = client.search(index=alias, body={"size": 10_000, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: json.dumps({**h["_source"], "indexed_at": None}, sort_keys=True) for h in hits}


def mixed_folder(folder, n: int = 230):
    """``n`` valid seeds, a broken one every 37 files, and copies of one article in chunks 1 and 4."""
    ids = fk.write_seeds(folder, n, tag="overlap")
    for i in range(0, n, 37):
        (folder / f"s{i:05d}.txt").write_text('---\ntitle: "unterminated\n---\n', encoding="utf-8")
    (folder / "s00001.txt").write_text(fk.SEED.format(i=999, tag="dup"), encoding="utf-8")
    (folder / "s00201.txt").write_text(fk.SEED.format(i=999, tag="dup"), encoding="utf-8")
    return ids


@pytest.mark.parametrize("rebuild", [False, True], ids=["incremental", "rebuild"])
def test_overlapped_chunks_leave_what_sequential_chunks_leave(
    settings, client, tmp_path, monkeypatch, request, rebuild
):
    monkeypatch.setattr(flow, "CHUNK_SEEDS", 50)  # 230 files: five chunks in one batch
    seen = {}
    for overlap in (False, True):
        folder = tmp_path / f"seeds-{overlap}"
        mixed_folder(folder)
        monkeypatch.setattr(flow, "OVERLAP_WRITES", overlap)
        s = replace(settings, index_base=f"{settings.index_base}-{overlap}".lower())
        request.addfinalizer(lambda s=s: client.indices.delete_index_template(name=s.index_base, ignore=[404]))
        messages: list[str] = []
        report = run(
            s,
            RunOptions(seed_dir=str(folder), check_images=False, full_rebuild=rebuild, max_batches=1),
            emit=messages.append,
        )
        assert [m for m in messages if m.startswith("batch progress")] == [
            f"batch progress: {k}/230 files" for k in (50, 100, 150, 200, 230)
        ]
        root = str(folder.resolve())
        seen[overlap] = (report.counts, ledger_states(client, s, root), index_sources(client, s.alias))
    assert seen[True][0] == seen[False][0] == {"indexed": 222, "quarantined": 7, "duplicate": 1}
    assert seen[True][1] == seen[False][1]
    assert seen[True][2] == seen[False][2]
    assert seen[True][1]["s00001.txt"][0] == "duplicate"  # the copy ingested last (chunk 5) wins
    assert seen[True][1]["s00201.txt"][0] == "indexed"


def test_a_failed_write_stops_the_batch_at_the_next_chunk_and_the_rerun_converges(
    settings, client, tmp_path, monkeypatch
):
    monkeypatch.setattr(flow, "CHUNK_SEEDS", 50)
    monkeypatch.setattr(flow, "OVERLAP_WRITES", True)
    folder = tmp_path / "seeds"
    ids = fk.write_seeds(folder, 200, tag="stop")
    real_index, real_build = flow.index_documents, flow.build_chunk
    writes: list[str] = []
    builds: list[int] = []

    def failing_index(client_, target, dl_index, docs):
        writes.append(threading.current_thread().name)
        if len(writes) == 2:
            raise RuntimeError("node went away (injected)")
        return real_index(client_, target, dl_index, docs)

    def counting_build(seeds, **kw):
        builds.append(len(seeds))
        return real_build(seeds, **kw)

    monkeypatch.setattr(flow, "index_documents", failing_index)
    monkeypatch.setattr(flow, "build_chunk", counting_build)
    with pytest.raises(RuntimeError, match="injected"):
        run(settings, RunOptions(seed_dir=str(folder), check_images=False, max_batches=1), emit=QUIET)
    assert all(name.startswith("seednews-writer") for name in writes)  # the writes ran in the writer thread
    assert len(writes) == 2  # chunk 3 was built (overlapping chunk 2's write) but never written
    assert builds == [50, 50, 50]
    root = str(folder.resolve())
    states = ledger_states(client, settings, root)
    assert sorted(states) == [f"s{i:05d}.txt" for i in range(50)]  # chunk 1 only, and all of it
    assert {st for st, _ in states.values()} == {"indexed"}
    indices.refresh(client, settings.alias)
    assert indices.count(client, settings.alias) == 50

    monkeypatch.setattr(flow, "index_documents", real_index)
    report = run(settings, RunOptions(seed_dir=str(folder), check_images=False, max_batches=1), emit=QUIET)
    assert report.counts == {"unchanged": 50, "indexed": 150}
    states = ledger_states(client, settings, root)
    assert len(states) == 200 and {st for st, _ in states.values()} == {"indexed"}
    assert {doc for _, doc in states.values()} == set(ids)
