"""Reads ride through cluster churn like writes (``pipeline.stores.retry``, issue 18).

- Units with fake callables and a fake clock: which errors are transient, the back-off is bounded and
  jittered, the deadline is respected, each retry is logged once, everything else fails at once.
- Paged reads stay exact when a page or a whole scroll is lost: ``Ledger._scan`` asks a failed page
  again after the same sort key; ``Ledger.fingerprints`` reads a scroll that lost its context again from
  the beginning (fake clients, then the real node behind a proxy).
- Whole runs against the real node through ``ReadFaultProxy``, a loopback proxy that answers the first
  try of every read (search, count, mget) with the 500 ``search_phase_execution_exception`` / "Node not
  connected" seen in test_cluster's rolling restart, and a scroll continuation with 404
  ``search_context_missing_exception``: both runs succeed, exact.
- A private node (not the shared one) stopped and started again on the same port and data dir while
  the main thread reads the ledger and plans a run: every read waits for it and succeeds.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from opensearchpy import helpers
from opensearchpy.exceptions import (
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    RequestError,
    SSLError,
    TransportError,
)

from devtools import localnode
from pipeline.config import Settings
from pipeline.run.flow import plan, run
from pipeline.run.options import RunOptions
from pipeline.stages.normalize import document_id
from pipeline.stores import retry
from pipeline.stores.client import make_client
from pipeline.stores.ledger import Ledger
from pipeline.stores.retry import ReadRetry, is_transient
from tests import faultkit as fk
from tests.test_faults import assert_exactly_indexed

QUIET = lambda _msg: None  # noqa: E731
NODE_NOT_CONNECTED = "[seednews-2][127.0.0.1:9301] Node not connected"


def search_phase_500(cause: str = "node_not_connected_exception", reason: str = NODE_NOT_CONNECTED) -> dict:
    """The body OpenSearch answers a search with when the node holding a shard copy just left."""
    root = {"type": cause, "reason": reason}
    return {
        "error": {
            "root_cause": [root],
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "phase": "query",
            "grouped": True,
            "failed_shards": [{"shard": 0, "index": "seednews-articles-ledger-v1", "node": "n2", "reason": root}],
            "caused_by": root,
        },
        "status": 500,
    }


SCROLL_LOST = {
    "error": {
        "root_cause": [{"type": "search_context_missing_exception", "reason": "No search context found for id [7]"}],
        "type": "search_phase_execution_exception",
        "reason": "all shards failed",
        "phase": "query",
        "grouped": True,
        "caused_by": {"type": "search_context_missing_exception", "reason": "No search context found for id [7]"},
    },
    "status": 404,
}


def http_error(status: int, body: dict[str, Any]) -> TransportError:
    """What opensearch-py raises for an HTTP error answer (its own status-to-class table)."""
    from opensearchpy.exceptions import HTTP_EXCEPTIONS

    cls = HTTP_EXCEPTIONS.get(status, TransportError)
    return cls(status, body["error"]["type"] if isinstance(body.get("error"), dict) else body.get("error"), body)


# ----------------------------------------------------------------------------- which errors are transient
TRANSIENT = {
    "connection refused": ConnectionError("N/A", "Connection refused", OSError(111, "Connection refused")),
    "timeout": ConnectionTimeout("TIMEOUT", "Read timed out", TimeoutError()),
    "429 busy": http_error(429, {"error": {"type": "rejected_execution_exception"}, "status": 429}),
    "502": http_error(502, {"error": {"type": "bad_gateway"}, "status": 502}),
    "503 no shard": http_error(503, {"error": {"type": "no_shard_available_action_exception"}, "status": 503}),
    "503 state not recovered": http_error(503, {"error": {"type": "cluster_block_exception"}, "status": 503}),
    "504": http_error(504, {"error": {"type": "gateway_timeout"}, "status": 504}),
    "500 node not connected": http_error(500, search_phase_500()),
    "500 no shard available": http_error(
        500, search_phase_500("no_shard_available_action_exception", "No shard available for [get [x][1]]")
    ),
    "500 node disconnected": http_error(
        500, search_phase_500("node_disconnected_exception", "[n2][127.0.0.1:9301][indices:data/read] disconnected")
    ),
    "500 node closed": http_error(500, search_phase_500("node_closed_exception", "node closed {n2}")),
}
NOT_TRANSIENT = {
    "400 bad query": RequestError(
        400, "search_phase_execution_exception", search_phase_500("query_shard_exception", "failed to create query")
    ),
    "400 mapping": http_error(400, {"error": {"type": "mapper_parsing_exception", "reason": "failed"}, "status": 400}),
    "404 no index": http_error(
        404, {"error": {"type": "index_not_found_exception", "reason": "no such index [x]"}, "status": 404}
    ),
    "404 scroll, outside a scroll": http_error(404, SCROLL_LOST),
    "500 a bug": http_error(500, search_phase_500("null_pointer_exception", "Cannot invoke ...")),
    "401": http_error(401, {"error": {"type": "security_exception", "reason": "missing credentials"}, "status": 401}),
    "TLS certificate": SSLError("N/A", "certificate verify failed", OSError()),
    "a Python error": KeyError("hits"),
}


@pytest.mark.parametrize("exc", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_errors_are_retried(exc):
    assert is_transient(exc)
    assert is_transient(exc, scroll=True)


@pytest.mark.parametrize("exc", NOT_TRANSIENT.values(), ids=NOT_TRANSIENT.keys())
def test_other_errors_are_not(exc):
    assert not is_transient(exc)


def test_inside_a_scroll_a_lost_context_or_failed_shards_are_transient_a_missing_index_is_not():
    assert is_transient(http_error(404, SCROLL_LOST), scroll=True)
    assert is_transient(helpers.ScanError("id", "Scroll request has only succeeded on 0 shards out of 1."), scroll=True)
    assert not is_transient(helpers.ScanError("id", "..."))
    assert not is_transient(NOT_TRANSIENT["404 no index"], scroll=True)


# ----------------------------------------------------------------------------- back-off and deadline
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


def failing(errors: list[BaseException], result: object = "ok", clock: FakeClock | None = None):
    """A callable that raises ``errors`` in turn, then returns ``result``; ``calls`` holds the clock at
    each call."""
    calls: list[float] = []

    def fn():
        calls.append(clock() if clock else 0.0)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def test_backoff_doubles_with_jitter_and_is_bounded():
    policy = ReadRetry(deadline=600, first_delay=0.5, max_delay=8.0)
    lows = [policy.delay(n, rand=lambda: 0.0) for n in range(1, 12)]
    highs = [policy.delay(n, rand=lambda: 0.999999) for n in range(1, 12)]
    assert lows[:5] == [0.25, 0.5, 1.0, 2.0, 4.0] and set(lows[5:]) == {4.0}
    assert highs[:5] == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0]) and max(highs) <= 8.0
    assert policy.delay(10_000) <= 8.0  # no overflow however long it goes on


def test_a_read_that_fails_transiently_is_tried_again_and_each_retry_is_logged_once(caplog):
    clock = FakeClock()
    fn = failing([TRANSIENT["500 node not connected"], TRANSIENT["connection refused"]], "42", clock)
    with caplog.at_level(logging.WARNING, logger="seednews.retry"):
        got = ReadRetry(deadline=60).call("ledger x: counts", fn, sleep=clock.sleep, clock=clock, rand=lambda: 0.5)
    assert got == "42" and len(fn.calls) == 3
    assert clock.slept == [0.375, 0.75]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("ledger x: counts failed (TransportError(500, 'search_phase_execution_exception'")
    assert "Node not connected" in warnings[0] and "retry 1 in 0.4s" in warnings[0]
    assert "ConnectionError" in warnings[1] and "retry 2 in 0.8s" in warnings[1]


def test_the_deadline_is_respected_and_the_last_error_is_raised_unchanged(caplog):
    clock = FakeClock()
    errors = [ConnectionError("N/A", f"refused #{i}", OSError()) for i in range(100)]
    fn = failing(errors, clock=clock)
    policy = ReadRetry(deadline=30, first_delay=0.5, max_delay=8)
    with caplog.at_level(logging.WARNING, logger="seednews.retry"), pytest.raises(ConnectionError) as err:
        policy.call("ledger x: scan", fn, sleep=clock.sleep, clock=clock, rand=lambda: 1.0)
    started = fn.calls[0]
    assert all(t <= started + 30 for t in fn.calls), "an attempt started after the deadline"
    assert sum(clock.slept) == pytest.approx(30)  # it used the time it had, not more
    assert err.value is errors[len(fn.calls) - 1]
    assert len(fn.calls) == 8  # 0.5, 1, 2, 4, 8, 8, then the 6.5 s left: 7 waits, 8 attempts
    assert "giving up after 30s" in caplog.records[-1].getMessage()


def test_an_error_that_is_not_transient_fails_at_once(caplog):
    clock = FakeClock()
    missing = NOT_TRANSIENT["404 no index"]
    fn = failing([missing], clock=clock)
    with caplog.at_level(logging.WARNING, logger="seednews.retry"), pytest.raises(NotFoundError) as err:
        ReadRetry().call("ledger x: counts", fn, sleep=clock.sleep, clock=clock)
    assert err.value is missing and len(fn.calls) == 1 and clock.slept == []
    assert not caplog.records


def test_the_deadline_comes_from_the_settings_and_travels_with_the_client():
    settings = Settings.from_env({"SEEDNEWS_READ_RETRY_DEADLINE": "7.5"})
    assert settings.read_retry_deadline == 7.5
    assert Settings.from_env({}).read_retry_deadline == retry.DEFAULT_READ_RETRY_DEADLINE == 60.0
    client = make_client(replace(settings, opensearch_url="http://127.0.0.1:9"))
    try:
        assert retry.policy_of(client) == ReadRetry(deadline=7.5)
    finally:
        client.close()
    assert retry.policy_of(object()) is retry.DEFAULT  # a client made elsewhere: the defaults


# ----------------------------------------------------------------------------- paged reads stay exact
FAST = ReadRetry(deadline=5, first_delay=0.001, max_delay=0.002)


class _Indices:
    def exists(self, index: str) -> bool:
        return True

    def refresh(self, index: str) -> dict:
        return {}


class FakeLedgerClient:
    """Just enough of a client for ``Ledger`` reads over ``docs`` (sorted by key): search_after pages,
    and a scroll. ``fail`` maps a call number (1-based, per kind) to the error it raises."""

    def __init__(self, docs: list[dict[str, Any]], fail: dict[tuple[str, int], BaseException]) -> None:
        self.docs = sorted(docs, key=lambda d: d["key"])
        self.fail = fail
        self.calls: dict[str, int] = {}
        self.indices = _Indices()
        self.scrolls: dict[str, int] = {}
        retry.attach(self, FAST)

    def _count(self, kind: str) -> None:
        self.calls[kind] = n = self.calls.get(kind, 0) + 1
        if (kind, n) in self.fail:
            raise self.fail[(kind, n)]

    def search(self, index: str, body: dict, filter_path: str | None = None, scroll: str | None = None, **kw):
        self._count("search")
        size = body.get("size", kw.get("size"))
        if scroll:  # the first page of a scroll
            sid = f"scroll-{len(self.scrolls)}"
            self.scrolls[sid] = size
            return self._scroll_page(sid, 0)
        after = (body.get("search_after") or [""])[0]
        page = [d for d in self.docs if d["key"] > after][:size]
        return {"hits": {"hits": [{"_id": d["key"], "_source": d, "sort": [d["key"]]} for d in page]}}

    def _scroll_page(self, sid: str, start: int) -> dict:
        size = self.scrolls[sid]
        page = self.docs[start : start + size]
        self.scrolls[sid + ":pos"] = start + size
        fields = [{"fields": {k: [v] for k, v in d.items() if k in ("key", "state", "size")}} for d in page]
        return {"_scroll_id": sid, "_shards": {"total": 1, "successful": 1, "skipped": 0}, "hits": {"hits": fields}}

    def scroll(self, body: dict, **kw):
        self._count("scroll")
        sid = body["scroll_id"]
        return self._scroll_page(sid, self.scrolls[sid + ":pos"])

    def clear_scroll(self, body: dict, **kw):
        return {}


DOCS = [{"key": f"k{i:03d}", "root": "/r", "path": f"s{i:03d}.txt", "state": "indexed", "size": i} for i in range(23)]


def test_a_failed_search_after_page_is_asked_again_after_the_same_key():
    client = FakeLedgerClient(DOCS, {("search", 3): http_error(500, search_phase_500())})
    got = [e.key for e in Ledger(client, "ledger")._scan({"match_all": {}}, page=5)]
    assert got == [d["key"] for d in DOCS]  # in order, none twice, none missing
    assert client.calls["search"] == 6  # 5 pages (the last one short) + 1 retry


def test_a_scroll_that_loses_its_context_is_read_again_from_the_start_exactly(caplog):
    client = FakeLedgerClient(DOCS, {("scroll", 2): http_error(404, SCROLL_LOST)})
    with caplog.at_level(logging.WARNING, logger="seednews.retry"):
        got = Ledger(client, "ledger").fingerprints("/r", page=5)
    assert sorted(got) == [d["key"] for d in DOCS]
    assert [got[d["key"]].size for d in DOCS] == list(range(23))
    assert client.calls["search"] == 2  # the scroll was opened again
    assert len(caplog.records) == 1 and "fingerprints of /r failed" in caplog.records[0].getMessage()
    assert "404" in caplog.records[0].getMessage() and "No search context found" in caplog.records[0].getMessage()


def test_a_scroll_that_meets_a_non_transient_error_fails():
    client = FakeLedgerClient(DOCS, {("scroll", 1): NOT_TRANSIENT["400 mapping"]})
    with pytest.raises(RequestError):
        Ledger(client, "ledger").fingerprints("/r", page=5)
    assert client.calls["search"] == 1


class SmallPages(Ledger):
    """A ledger read in pages of 5, so a 23-entry folder is a scroll of 5 pages."""

    def fingerprints(self, root: str, content: bool = False, page: int = 5, on_snapshot=None):
        return super().fingerprints(root, content, page=5, on_snapshot=on_snapshot)


class SlowScroll(FakeLedgerClient):
    """Each scroll continuation waits ``delay`` seconds, as a node's answer does."""

    delay = 0.1

    def scroll(self, body: dict, **kw):
        time.sleep(self.delay)
        return super().scroll(body, **kw)


class RecordedWalk:
    """A source whose walk notes, each time it starts, how far the ledger's read had got."""

    root = "/r"

    def __init__(self, client: FakeLedgerClient, read_done: threading.Event, starts: list) -> None:
        self.client, self.read_done, self.starts = client, read_done, starts

    def walk(self):
        self.starts.append((dict(self.client.calls), self.read_done.is_set()))
        yield from ()


def _walk_beside(client: FakeLedgerClient, starts: list) -> dict:
    from pipeline.run.plan import walk_beside

    done = threading.Event()

    class Ledger_(SmallPages):
        def fingerprints(self, *a, **kw):
            try:
                return super().fingerprints(*a, **kw)
            finally:
                done.set()

    source = RecordedWalk(client, done, starts)
    known, walked = walk_beside(source, Ledger_(client, "ledger"), False)  # type: ignore[arg-type]
    assert walked == []
    return known


def test_planning_walks_the_folder_beside_the_ledger_read_once_its_snapshot_is_taken():
    """The walk starts after the scroll's first page (its snapshot: a file recorded later is in the walk or
    not in the snapshot, never in the snapshot alone) and before the read ends (the two overlap)."""
    client, starts = SlowScroll(DOCS, {}), []
    known = _walk_beside(client, starts)
    assert sorted(known) == [d["key"] for d in DOCS]
    [(calls, read_done)] = starts  # walked once
    assert calls.get("search") == 1 and calls.get("scroll", 0) < 4 and not read_done, starts


def test_a_ledger_read_that_starts_again_makes_planning_walk_the_folder_again_after_it():
    """A lost scroll is read again from the start: a snapshot later than the walk's start, so the folder
    is walked again once the read is done, and the fingerprints are exact."""
    client, starts = FakeLedgerClient(DOCS, {("scroll", 2): http_error(404, SCROLL_LOST)}), []
    known = _walk_beside(client, starts)
    assert sorted(known) == [d["key"] for d in DOCS] and client.calls["search"] == 2
    assert len(starts) == 2 and starts[1][1] is True and starts[1][0]["search"] == 2  # again, after the read


def test_a_ledger_read_that_fails_before_its_snapshot_stops_planning_before_the_walk():
    client, starts = FakeLedgerClient(DOCS, {("search", 1): NOT_TRANSIENT["400 mapping"]}), []
    with pytest.raises(RequestError):
        _walk_beside(client, starts)
    assert client.calls["search"] == 1 and starts == []


# ----------------------------------------------------------------------------- whole runs, real node, a proxy
class ReadFaultProxy(fk.BulkFaultProxy):
    """A loopback proxy in front of ``upstream`` that answers the FIRST try of every read (``_search``,
    ``_count``, ``_mget``: same method, path and body) with the 500 a search gets when the node holding
    its shard copy just left, and the first ``scroll_faults`` scroll continuations with 404
    ``search_context_missing_exception`` (the node holding the scroll restarted). The try after that
    is forwarded, as is everything else (writes, HEAD, health, aliases). ``injected`` lists
    ``(kind, path)`` per fault."""

    def __init__(self, upstream: str, scroll_faults: int = 1) -> None:
        super().__init__(upstream, index="-", fault=lambda _n: None)
        self.scroll_faults = scroll_faults
        self.seen: set[tuple[str, str, bytes]] = set()
        self.read_faults: list[tuple[str, str]] = []

    @staticmethod
    def kind(method: str, path: str) -> str | None:
        route = urlsplit(path).path.rstrip("/")
        if method not in ("GET", "POST"):
            return None
        if route.endswith("/_search/scroll"):
            return "scroll"
        return next((k for k in ("_search", "_count", "_mget") if route.endswith("/" + k)), None)

    def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        kind = self.kind(method, path)
        if kind is not None:
            with self.lock:
                first = (method, path, body) not in self.seen
                self.seen.add((method, path, body))
                scrolls = sum(k == "scroll" for k, _ in self.read_faults)
                fault = first and (kind != "scroll" or scrolls < self.scroll_faults)
                if fault:
                    self.read_faults.append((kind, urlsplit(path).path))
            if fault:
                status, answer = (404, SCROLL_LOST) if kind == "scroll" else (500, search_phase_500())
                return status, [("Content-Type", "application/json; charset=UTF-8")], json.dumps(answer).encode()
        return self._forward(method, path, headers, body)


def test_runs_succeed_when_every_read_first_meets_a_lost_node(settings, client, tmp_path, caplog):
    """Two runs (a first one, then one after edits and new files) through ``ReadFaultProxy``: every
    distinct read fails once with a 500 "Node not connected", the planning scroll loses its context
    once. Both runs succeed, every fault was retried (one WARNING each), and the end state is exact."""
    seed_dir = tmp_path / "seeds"
    ids = fk.write_seeds(seed_dir, 40, tag="reads")
    options = RunOptions(seed_dir=str(seed_dir), check_images=False, max_batches=2)
    with ReadFaultProxy(settings.opensearch_url) as proxy, caplog.at_level(logging.WARNING, logger="seednews.retry"):
        via = replace(settings, opensearch_url=proxy.url)
        proxied = make_client(via)
        try:
            first = run(via, options, client=proxied, emit=QUIET)
            assert (first.indexed, first.failed, first.quarantined) == (40, [], [])
            faults_first = len(proxy.read_faults)
            for i in (3, 17):  # edit two files, add two
                path = seed_dir / f"s{i:05d}.txt"
                path.write_text(path.read_text(encoding="utf-8").replace('title: "T', 'title: "Edited T'), "utf-8")
            ids += [document_id(f"https://example.com/a/new/{i}") for i in range(2)]
            for i in range(2):
                text = fk.SEED.format(i=i, tag="new")
                (seed_dir / f"new{i}.txt").write_text(text, encoding="utf-8")
            second = run(via, options, client=proxied, emit=QUIET)
        finally:
            proxied.close()
    assert (second.unchanged, second.indexed, second.failed, second.quarantined) == (38, 4, [], [])
    kinds = {k for k, _ in proxy.read_faults}
    assert {"_search", "_mget", "scroll"} <= kinds, proxy.read_faults
    assert faults_first and len(proxy.read_faults) > faults_first
    retried = [r.getMessage() for r in caplog.records if r.name == "seednews.retry"]
    assert len(retried) == len(proxy.read_faults)
    assert sum("Node not connected" in m for m in retried) == len(proxy.read_faults) - 1
    assert sum("No search context found" in m for m in retried) == 1
    assert_exactly_indexed(client, settings, seed_dir, ids)


def test_fingerprints_through_a_lost_scroll_on_the_real_node_are_exact(settings, client, tmp_path):
    """Planning's scroll, paged small, loses its context on its 1st and 3rd continuation: read again from
    the start each time, it returns exactly what a healthy read returns."""
    seed_dir = tmp_path / "seeds"
    fk.write_seeds(seed_dir, 57, tag="scroll")
    run(settings, RunOptions(seed_dir=str(seed_dir), check_images=False), client=client, emit=QUIET)
    root = str(seed_dir.resolve())
    healthy = Ledger(client, settings.ledger_index).fingerprints(root, content=True, page=10)
    assert len(healthy) == 57
    with ReadFaultProxy(settings.opensearch_url, scroll_faults=2) as proxy:
        proxied = make_client(replace(settings, opensearch_url=proxy.url))
        try:
            got = Ledger(proxied, settings.ledger_index).fingerprints(root, content=True, page=10)
        finally:
            proxied.close()
    assert [k for k, _ in proxy.read_faults].count("scroll") == 2
    assert got == healthy


# ----------------------------------------------------------------------------- a real node restart
def test_reads_and_planning_ride_through_a_node_restart(tmp_path, monkeypatch, caplog):
    """A private node (its own data dir, kept) indexes a folder; then a thread stops it and starts it
    again on the same port and data dir while the main thread keeps planning a run on that folder and
    reading the ledger. Every read waits for the node and returns exactly what it returned before; a
    run afterwards finds every file unchanged."""
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)  # really start a node of our own
    seed_dir = tmp_path / "seeds"
    ids = fk.write_seeds(seed_dir, 30, tag="restart")
    written = time.monotonic()
    root = str(seed_dir.resolve())
    work = Path(tempfile.mkdtemp(prefix="reads-", dir=localnode.cache_dir() / "nodes"))
    work.chmod(0o755)  # the node user (we are root) must reach the data dir
    nodes: list[localnode.LocalNode] = []
    client = None
    try:
        nodes.append(localnode.start(data_dir=work / "home", progress=QUIET))
        port = int(nodes[0].url.rsplit(":", 1)[1])
        # a loaded machine may take minutes to restart a node: the deadline is the test's, not the default
        settings = Settings(opensearch_url=nodes[0].url, index_base="reads-restart", read_retry_deadline=300)
        client = make_client(settings)
        options = RunOptions(seed_dir=str(seed_dir), check_images=False)
        time.sleep(max(0.0, written + 3.5 - time.monotonic()))  # past the racy window: plans write nothing
        assert run(settings, options, client=client, emit=QUIET).indexed == 30
        ledger = Ledger(client, settings.ledger_index)
        fingerprints, counts = ledger.fingerprints(root), ledger.counts(root)
        assert counts == {"indexed": 30} and len(fingerprints) == 30

        events: dict[str, float] = {}
        failures: list[BaseException] = []

        def restart() -> None:
            try:
                nodes[0].stop()
                events["down"] = time.monotonic()
                nodes.append(localnode.start(data_dir=work / "home", port=port, progress=QUIET))
                events["up"] = time.monotonic()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                failures.append(exc)

        plans = 0
        with caplog.at_level(logging.WARNING, logger="seednews.retry"):
            restarter = threading.Thread(target=restart, name="restart-node")
            restarter.start()
            while restarter.is_alive() or plans < 2:
                planned = plan(options, client, settings, settings.alias)
                assert (planned.report.unchanged, planned.todo) == (30, 0)
                assert ledger.fingerprints(root) == fingerprints
                assert ledger.counts(root) == counts
                plans += 1
            restarter.join()
        assert not failures, failures
        assert nodes[1].url == nodes[0].url
        waited = [r.getMessage() for r in caplog.records if r.name == "seednews.retry"]
        assert waited, "no read met the restart: the test proved nothing"
        assert any("ConnectionError" in m for m in waited), waited[:3]

        again = run(settings, options, client=client, emit=QUIET)
        assert (again.unchanged, again.indexed, again.failed) == (30, 0, [])
        assert_exactly_indexed(client, settings, seed_dir, ids)
        print(f"\nnode down for {events['up'] - events['down']:.1f}s; {plans} plans, {len(waited)} read retries")
    finally:
        if client is not None:
            client.close()
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(work, ignore_errors=True)
