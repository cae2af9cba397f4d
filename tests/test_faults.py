"""Fault injection against REAL OpenSearch nodes on 127.0.0.1: the pipeline survives a crashed node, a
busy node (429), an unavailable node (503), a node that stays unavailable, and a worker killed mid-batch,
and always converges to exactly one document per seed file with a ledger that never claims more than
OpenSearch acknowledged.

- ``test_opensearch_killed_mid_bulk_then_restarted`` starts its OWN node (a persistent data dir under the
  localnode cache, so the node user can reach it) and SIGKILLs its JVM while the CLI is writing batch 2.
- The other tests use the shared session node (conftest), directly or through ``faultkit.BulkFaultProxy``,
  a loopback proxy that injects request-level 429/503 answers or per-item 429s into ``_bulk`` requests
  for the article alias (and forwards everything else, ledger writes included).

Timing: back-off in the pipeline is real (1 s, 2 s, 4 s, 8 s...); faults are kept few so the file runs in
about two minutes.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from opensearchpy.exceptions import TransportError

from devtools import localnode
from pipeline.config import Settings
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.stores import indices
from pipeline.stores.client import make_client
from pipeline.stores.ledger import Ledger
from pipeline.types import entry_key
from tests import faultkit as fk

QUIET = lambda _msg: None  # noqa: E731


# ----------------------------------------------------------------------------- checks
def ledger_indexed_doc_ids(client, settings: Settings, root: str) -> set[str]:
    """doc_ids of the ledger entries for ``root`` in state ``indexed``."""
    ledger = settings.ledger_index
    if not client.indices.exists(index=ledger):
        return set()
    client.indices.refresh(index=ledger)
    hits = client.search(
        index=ledger,
        body={
            "size": 10_000,
            "_source": ["doc_id"],
            "query": {"bool": {"filter": [{"term": {"root": root}}, {"term": {"state": "indexed"}}]}},
        },
    )["hits"]["hits"]
    return {h["_source"]["doc_id"] for h in hits}


def present(client, index: str, ids: list[str] | set[str]) -> set[str]:
    """Which of ``ids`` are documents in ``index`` (mget, in chunks)."""
    ids, found = list(ids), set()
    for i in range(0, len(ids), 1000):
        docs = client.mget(index=index, body={"ids": ids[i : i + 1000]}, _source=False)["docs"]
        found |= {d["_id"] for d in docs if d.get("found")}
    return found


def assert_ledger_never_ahead_of_the_index(client, settings: Settings, root: str) -> set[str]:
    """Every file the ledger calls indexed has its document in the index (the ledger is written only
    after OpenSearch acknowledged). Returns those doc ids."""
    claimed = ledger_indexed_doc_ids(client, settings, root)
    missing = claimed - present(client, settings.alias, claimed)
    assert not missing, f"the ledger says indexed, the index lacks {len(missing)} documents, e.g. {sorted(missing)[:3]}"
    return claimed


def assert_exactly_indexed(client, settings: Settings, seed_dir: Path, ids: list[str]) -> None:
    """The end state after any fault: exactly one document per seed (ids are unique per seed, so
    count == N and all N ids present means no duplicates and nothing missing), one concrete index
    behind the alias, and a ledger saying ``indexed`` for every file and nothing else."""
    n = len(ids)
    assert len(set(ids)) == n
    indices.refresh(client, settings.alias)
    behind = indices.alias_indices(client, settings.alias)
    assert len(behind) == 1, behind
    versions = sorted(client.indices.get(index=indices.versions_pattern(settings.index_base), expand_wildcards="all"))
    assert versions == behind, f"stray article indices: {versions}"
    assert indices.count(client, settings.alias) == n
    missing = set(ids) - present(client, settings.alias, ids)
    assert not missing, f"{len(missing)} seeds have no document, e.g. {sorted(missing)[:3]}"
    root = str(seed_dir.resolve())
    assert Ledger(client, settings.ledger_index).counts(root) == {"indexed": n}
    assert ledger_indexed_doc_ids(client, settings, root) == set(ids)
    if client.indices.exists(index=settings.deadletter_index):
        assert indices.count(client, settings.deadletter_index) == 0


# ----------------------------------------------------------------------------- 1. node crash
def test_opensearch_killed_mid_bulk_then_restarted(tmp_path, monkeypatch):
    """SIGKILL the node's JVM while the CLI writes batch 2 of 4: the CLI fails fast with a clear error;
    after a restart on the same data dir and port a re-run completes: exactly N documents, ledger all
    indexed."""
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)  # really start a node of our own
    n, batches, base = 4000, 4, "faults-crash"
    per_batch = n // batches
    seed_dir = tmp_path / "seeds"
    ids = fk.write_seeds(seed_dir, n, tag="crash")
    root = str(seed_dir.resolve())
    work = Path(tempfile.mkdtemp(prefix="faults-", dir=localnode.cache_dir() / "nodes"))
    work.chmod(0o755)  # the node user (we are root) must reach the data dir
    node = node2 = cli = client = None
    try:
        node = localnode.start(data_dir=work / "home", progress=QUIET)
        port = int(node.url.rsplit(":", 1)[1])
        settings = Settings(opensearch_url=node.url, index_base=base)

        cli = fk.Cli(seed_dir, node.url, base, tmp_path / "logs", batches)
        seen: list[int] = []
        assert fk.wait_until(
            lambda: seen.append(fk.indexing_total(node.url, base)) or seen[-1] > per_batch or not cli.running(),
            timeout=120,
            interval=0.01,
        )
        assert cli.running(), f"the CLI ended before the node was killed:\n{cli.stdout[-2000:]}\n{cli.stderr[-2000:]}"
        os.kill(node.pid, signal.SIGKILL)  # the JVM (it runs as the node user; we are root)
        killed_at, observed = time.monotonic(), seen[-1]

        rc = cli.wait(timeout=120)  # raises (and kills it) if the CLI hangs
        gave_up_after = time.monotonic() - killed_at
        last = cli.stderr.strip().splitlines()[-1]
        assert rc == 2, (rc, cli.stderr[-2000:])
        assert last.startswith(f"error: nothing listens at {node.url} (connection refused)"), last
        assert gave_up_after < 90
        node.stop()  # reaps the killed JVM and its watchdog; the data dir is kept

        # Restart on the SAME data dir and port (the killed node's TIME_WAIT sockets must not block it).
        node2 = localnode.start(data_dir=work / "home", port=port, progress=QUIET)
        assert node2.url == node.url
        client = make_client(settings)

        # what survived the crash: every file the ledger calls indexed is in the index (acknowledged
        # writes are durable), and the ledger holds whole batches only
        indices.refresh(client, settings.alias)
        survived = indices.count(client, settings.alias)
        claimed = assert_ledger_never_ahead_of_the_index(client, settings, root)
        assert len(claimed) % per_batch == 0 and per_batch <= len(claimed) <= n
        if observed < 2 * per_batch:  # killed while batch 2 was being written: only batch 1 recorded
            assert len(claimed) == per_batch, (observed, len(claimed))
            assert survived >= per_batch
        assert Ledger(client, settings.ledger_index).counts(root) == {"indexed": len(claimed)}

        again = fk.Cli(seed_dir, node2.url, base, tmp_path / "logs", batches)
        assert again.wait(timeout=180) == 0, again.stderr[-2000:]
        assert f"{len(claimed)} unchanged" in again.stdout
        assert_exactly_indexed(client, settings, seed_dir, ids)
        print(
            f"\nnode killed at index_total={observed}; CLI gave up {gave_up_after:.1f}s later; "
            f"{survived} docs survived, ledger had {len(claimed)}"
        )
    finally:
        if cli is not None:
            cli.kill()
        if client is not None:
            client.close()
        for nd in (node2, node):
            if nd is not None:
                nd.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_port_left_in_time_wait_by_a_crashed_node_is_reusable():
    """After a node dies, its port is held only by TIME_WAIT sockets (connections the node's side
    closed) for up to 60 s. OpenSearch binds with SO_REUSEADDR and can listen there at once, so
    ``localnode.start(port=...)`` must not refuse it as "already in use" (it did, before
    ``_port_is_free`` used SO_REUSEADDR). A port with a live listener must still be refused: test_localnode."""
    import socket

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first -> its socket ends in TIME_WAIT on `port`
    assert client.recv(1) == b""
    client.close()
    listener.close()  # the "node" is gone

    assert localnode._port_is_free(port), f"localnode refuses port {port}, held only by TIME_WAIT sockets"
    import socketserver

    class Server(socketserver.TCPServer):
        allow_reuse_address = True  # SO_REUSEADDR, like the JVM (network.tcp.reuse_address)

    with Server(("127.0.0.1", port), socketserver.BaseRequestHandler):
        pass  # ...and a real server does listen there right now, so localnode's answer is the truth


def test_cli_reports_an_unreachable_cluster_in_one_clear_line(tmp_path):
    """The CLI promises "infrastructure errors: one clear line, not a traceback" (exit 2). Against a
    loopback port nobody listens on it does exit 2 with that line, quickly, but opensearch-py's
    ``opensearch`` logger first prints a full traceback (WARNING with exc_info) for every failed
    attempt: after a node crash mid-bulk that is ~900 lines of stderr before the one clear line."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: connection refused
    seed_dir = tmp_path / "seeds"
    fk.write_seeds(seed_dir, 1, tag="dead")
    cli = fk.Cli(seed_dir, dead, "faults-dead", tmp_path / "logs", 1)
    try:
        assert cli.wait(timeout=60) == 2
    finally:
        cli.kill()
    lines = cli.stderr.strip().splitlines()
    assert (
        lines[-1].startswith("error: nothing listens at http://127.0.0.1:") and "(connection refused)" in lines[-1]
    ), lines[-1]
    assert "Traceback" not in cli.stderr, f"{len(lines)} lines of stderr, tracebacks included:\n" + "\n".join(
        lines[:12]
    )


# ----------------------------------------------------------------------------- 2. busy / unavailable node
@pytest.mark.parametrize(
    "fault, injected, gaps",
    [
        # request-level 429 twice: opensearch-py's streaming_bulk retries the chunk after 1 s, then 2 s
        pytest.param(lambda n: 429 if n <= 2 else None, [429, 429], {2: 1.0, 3: 2.0}, id="request-429"),
        # per-item 429s (every other item refused, twice): the helper re-sends only those, after 1 s, 2 s
        pytest.param(lambda n: "items429" if n <= 2 else None, [429, 429], {2: 1.0, 3: 2.0}, id="item-429"),
        # request-level 503, 8 times: the transport retries each call 3 times at once (4 requests), then
        # bulk_index backs off 1 s and 2 s between its rounds
        pytest.param(lambda n: 503 if n <= 8 else None, [503] * 8, {5: 1.0, 9: 2.0}, id="request-503"),
    ],
)
def test_busy_or_unavailable_node_slows_the_run_down_but_everything_lands(
    settings, client, tmp_path, fault, injected, gaps
):
    n = 300
    seed_dir = tmp_path / "seeds"
    ids = fk.write_seeds(seed_dir, n, tag="busy")
    with fk.BulkFaultProxy(settings.opensearch_url, settings.alias, fault) as proxy:
        via = replace(settings, opensearch_url=proxy.url)
        proxied = make_client(via)
        try:
            started = time.monotonic()
            report = run(
                via, RunOptions(seed_dir=str(seed_dir), check_images=False, max_batches=2), client=proxied, emit=QUIET
            )
            took = time.monotonic() - started
        finally:
            proxied.close()
    assert proxy.statuses == injected
    if injected[0] == 429 and proxy.items_refused:
        assert proxy.items_refused == 75 + 38  # 150 items in batch 1: 75 refused, then 38 of those
    assert (report.failed, report.indexed, report.quarantined) == ([], n, [])
    # it slowed down: the retries came only after the back-off
    for k, at_least in gaps.items():
        waited = proxy.times[k - 1] - proxy.times[k - 2]
        assert waited >= at_least * 0.95, f"bulk #{k} came {waited:.2f}s after #{k - 1}, expected >= {at_least}s"
    assert took >= sum(gaps.values()) * 0.95
    assert_exactly_indexed(client, settings, seed_dir, ids)


# ----------------------------------------------------------------------------- 3. worker crash
def test_worker_killed_mid_batch_then_rerun(settings, client, tmp_path):
    """SIGKILL the CLI (not the node) while it writes batch 2 of 2: no ledger entry for that batch, some
    of its documents already in; the re-run converges to exactly N documents."""
    n, batches = 2000, 2
    per_batch = n // batches
    seed_dir = tmp_path / "seeds"
    ids = fk.write_seeds(seed_dir, n, tag="worker")
    root = str(seed_dir.resolve())
    url = settings.opensearch_url
    cli = fk.Cli(seed_dir, url, settings.index_base, tmp_path / "logs", batches)
    try:
        seen: list[int] = []
        assert fk.wait_until(
            lambda: seen.append(fk.indexing_total(url, settings.alias)) or seen[-1] > per_batch or not cli.running(),
            timeout=120,
            interval=0.01,
        )
        assert cli.running(), f"the CLI ended before it was killed:\n{cli.stdout[-2000:]}\n{cli.stderr[-2000:]}"
        os.killpg(cli.proc.pid, signal.SIGKILL)
        assert cli.wait(timeout=30) == -signal.SIGKILL
    finally:
        cli.kill()
    observed = seen[-1]

    indices.refresh(client, settings.alias)
    in_index = indices.count(client, settings.alias)
    claimed = assert_ledger_never_ahead_of_the_index(client, settings, root)
    assert len(claimed) in (per_batch, n) and in_index >= len(claimed)
    if observed < n:  # killed while batch 2 was being written
        assert len(claimed) == per_batch and in_index > per_batch, (observed, in_index, len(claimed))

    again = fk.Cli(seed_dir, url, settings.index_base, tmp_path / "logs", batches)
    try:
        assert again.wait(timeout=120) == 0, again.stderr[-2000:]
    finally:
        again.kill()
    assert f"{len(claimed)} unchanged" in again.stdout
    assert_exactly_indexed(client, settings, seed_dir, ids)
    print(f"\nworker killed at index_total={observed}: {in_index} docs in, ledger had {len(claimed)}")


# ----------------------------------------------------------------------------- 4. persistent 503
def test_node_that_stays_unavailable_ends_the_run_with_an_error_and_records_nothing(settings, client, tmp_path):
    """Batch 1 lands; from then on every article ``_bulk`` gets 503. The run raises after its bounded
    retries (4 back-offs: 1+2+4+8 s); batch 2's files are not in the ledger at all (so the next run
    takes them), and a re-run on a healthy path completes them."""
    n, per_batch = 200, 100
    seed_dir = tmp_path / "seeds"
    ids = fk.write_seeds(seed_dir, n, tag="down")
    root = str(seed_dir.resolve())
    options = RunOptions(seed_dir=str(seed_dir), check_images=False, max_batches=2)
    with fk.BulkFaultProxy(settings.opensearch_url, settings.alias, lambda k: None if k == 1 else 503) as proxy:
        via = replace(settings, opensearch_url=proxy.url)
        proxied = make_client(via)
        try:
            started = time.monotonic()
            with pytest.raises(TransportError) as err:
                run(via, options, client=proxied, emit=QUIET)
            took = time.monotonic() - started
        finally:
            proxied.close()
    assert err.value.status_code == 503 and "unavailable_shards_exception" in str(err.value)
    assert proxy.statuses == [503] * 20  # 5 rounds x (1 call + 3 transport retries), then it gave up
    assert 15 * 0.95 <= took < 60, took

    ledger = Ledger(client, settings.ledger_index)
    assert ledger.counts(root) == {"indexed": per_batch}
    entries = ledger.lookup([entry_key(root, f"s{i:05d}.txt") for i in range(n)])
    assert sorted(e.path for e in entries.values()) == [f"s{i:05d}.txt" for i in range(per_batch)]  # batch 2: nothing
    assert {e.state for e in entries.values()} == {"indexed"}
    indices.refresh(client, settings.alias)
    assert indices.count(client, settings.alias) == per_batch  # batch 2 never reached the node
    assert_ledger_never_ahead_of_the_index(client, settings, root)

    report = run(settings, options, client=client, emit=QUIET)  # the healthy path
    assert (report.unchanged, report.indexed, report.failed) == (per_batch, per_batch, [])
    assert_exactly_indexed(client, settings, seed_dir, ids)
