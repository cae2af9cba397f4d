"""A batch's chunks overlap: chunk k is written (bulk, then ledger) by a writer thread while the next
chunks are built, in this process or in parse worker processes (``pipeline.run.parallel``). Against
the REAL test node: the overlapped and parallel runs leave exactly what the sequential one leaves, an
error in a write stops the batch at the next chunk boundary with the ledger exact up to the last chunk
that landed, a parse worker killed mid-run fails the run without a ledger entry ahead of the index,
and re-runs converge.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import replace
from multiprocessing import forkserver

import pytest

from pipeline.run import flow, parallel
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


MODES = {"sequential": (False, "1"), "overlapped": (True, "1"), "two-workers": (True, "2")}


@pytest.mark.parametrize("rebuild", [False, True], ids=["incremental", "rebuild"])
def test_overlapped_and_parallel_chunks_leave_what_sequential_chunks_leave(
    settings, client, tmp_path, monkeypatch, request, rebuild
):
    monkeypatch.setattr(flow, "CHUNK_SEEDS", 50)  # 230 files: five chunks in one batch
    monkeypatch.setattr(parallel, "MIN_SEEDS_PER_WORKER", 10)
    seen = {}
    for mode, (overlap, workers) in MODES.items():
        folder = tmp_path / f"seeds-{mode}"
        mixed_folder(folder)
        monkeypatch.setattr(flow, "OVERLAP_WRITES", overlap)
        monkeypatch.setenv(parallel.ENV_PARSE_WORKERS, workers)
        s = replace(settings, index_base=f"{settings.index_base}-{mode}")
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
        assert ("parsing in 2 worker processes (SEEDNEWS_PARSE_WORKERS to change)" in messages) == (workers == "2")
        root = str(folder.resolve())
        seen[mode] = (report.counts, ledger_states(client, s, root), index_sources(client, s.alias))
    base = seen["sequential"]
    assert base[0] == {"indexed": 222, "quarantined": 7, "duplicate": 1}
    for mode in ("overlapped", "two-workers"):
        assert seen[mode][0] == base[0], mode
        assert seen[mode][1] == base[1], mode
        assert seen[mode][2] == base[2], mode
    assert base[1]["s00001.txt"][0] == "duplicate"  # the copy ingested last (chunk 5) wins
    assert base[1]["s00201.txt"][0] == "indexed"


def test_a_failed_write_stops_the_batch_at_the_next_chunk_and_the_rerun_converges(
    settings, client, tmp_path, monkeypatch
):
    monkeypatch.setattr(flow, "CHUNK_SEEDS", 50)
    monkeypatch.setattr(flow, "OVERLAP_WRITES", True)
    folder = tmp_path / "seeds"
    ids = fk.write_seeds(folder, 200, tag="stop")
    real_index, real_build = flow.index_documents, parallel.build_part
    writes: list[str] = []
    builds: list[int] = []

    def failing_index(client_, target, dl_index, docs):
        writes.append(threading.current_thread().name)
        if len(writes) == 2:
            raise RuntimeError("node went away (injected)")
        return real_index(client_, target, dl_index, docs)

    def counting_build(seeds, options):
        builds.append(len(seeds))
        return real_build(seeds, options)

    monkeypatch.setattr(flow, "index_documents", failing_index)
    monkeypatch.setattr(parallel, "build_part", counting_build)
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


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def test_a_parse_worker_killed_mid_run_fails_the_run_and_the_rerun_converges(settings, client, tmp_path, monkeypatch):
    monkeypatch.setattr(flow, "CHUNK_SEEDS", 100)
    monkeypatch.setenv(parallel.ENV_PARSE_WORKERS, "2")
    monkeypatch.setattr(parallel, "MIN_SEEDS_PER_WORKER", 10)
    folder = tmp_path / "seeds"
    ids = fk.write_seeds(folder, 3000, tag="workerkill")
    written: list[int] = []
    real_index = flow.index_documents
    killed: list[int] = []

    def index_then_kill(client_, target, dl_index, docs):
        out = real_index(client_, target, dl_index, docs)
        written.append(len(docs))
        if len(written) == 3:  # three chunks landed; the workers are busy with the next ones
            server = forkserver._forkserver._forkserver_pid
            victims = _children_of(server) if server else []
            assert victims, "no parse worker processes found"
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])
        return out

    monkeypatch.setattr(flow, "index_documents", index_then_kill)
    with pytest.raises(parallel.ParseWorkerLost, match="a parse worker process died while building a chunk"):
        run(settings, RunOptions(seed_dir=str(folder), check_images=False, max_batches=1), emit=QUIET)
    assert killed
    root = str(folder.resolve())
    states = ledger_states(client, settings, root)
    assert {st for st, _ in states.values()} == {"indexed"}
    indices.refresh(client, settings.alias)
    in_index = indices.count(client, settings.alias)
    assert 300 <= len(states) <= in_index < 3000  # never ahead of the index; the run stopped early
    present = {
        d["_id"]
        for d in client.mget(index=settings.alias, body={"ids": [doc for _, doc in states.values()]}, _source=False)[
            "docs"
        ]
        if d.get("found")
    }
    assert present == {doc for _, doc in states.values()}

    monkeypatch.setattr(flow, "index_documents", real_index)
    report = run(settings, RunOptions(seed_dir=str(folder), check_images=False, max_batches=1), emit=QUIET)
    assert report.counts == {"unchanged": len(states), "indexed": 3000 - len(states)}
    states = ledger_states(client, settings, root)
    assert len(states) == 3000 and {doc for _, doc in states.values()} == set(ids)
    indices.refresh(client, settings.alias)
    assert indices.count(client, settings.alias) == 3000
