"""A real multi-node OpenSearch cluster on 127.0.0.1, without Docker (checkout-only dev tooling).

(Slightly over 400 lines on purpose: node start, kill, restart and the rolling restart share one
handle type and one watchdog, and the fault tests drive them together.)

Every node is started exactly like the single node of :mod:`devtools.localnode` and keeps all of its
safety properties: the same pinned, manifest-verified, root-owned distribution; when root, each JVM
runs as the unprivileged ``seednews-os`` user; each node's home (config/, data/, logs/) is created by
root only as an empty directory handed over with ``fchown`` through an ``O_NOFOLLOW`` descriptor and
filled by the launcher that already runs as the node user; log tails and pid files are read bounded
and link-safe; and a watchdog per node stops its JVM when the process that started it ends (even by
SIGKILL), so a killed test run leaves no JVM behind. What differs:

* ``n`` nodes (default 3), all with every role (cluster manager eligible + data), each with its own
  home under one cluster folder ``<cache>/nodes/cluster-*``, its own HTTP and transport port, all
  bound to 127.0.0.1; ``discovery.seed_hosts`` lists every transport port and
  ``cluster.initial_cluster_manager_nodes`` every node name at the first start only (the docs say to
  drop it once the cluster has formed, so restarts go without it);
* a cluster name of its own (``seednews-cluster-<id>``), so two clusters on one machine never join;
* small heaps (:data:`HEAP`) and a C1-only JIT (:data:`FAST_START_JVM`): the machines are 2-core
  and shared, and restarting nodes one by one is what the tests spend their time on;
* per-node :meth:`LocalCluster.kill` (SIGKILL), :meth:`~LocalCluster.stop_node` (SIGTERM, graceful),
  :meth:`~LocalCluster.start_node` (same home, same ports, data kept), and
  :meth:`~LocalCluster.rolling_restart` following the OpenSearch procedure (replica allocation off,
  flush, restart one node, allocation back on, wait for green; the elected cluster manager last).

Python API::

    from devtools.cluster import start_cluster
    with start_cluster(3) as cluster:
        os.environ["OPENSEARCH_URL"] = cluster.url_list   # "http://127.0.0.1:a,http://127.0.0.1:b,..."
        cluster.kill(cluster.manager_index())

Command line (foreground; Ctrl-C or SIGTERM stops every node and deletes the cluster folder)::

    python -m devtools.cluster run [--nodes 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from devtools import localnode as ln

#: Heap of each node (min, max). Three of these plus the session's single node fit the 24 GB
#: machine easily; what is scarce is CPU (2 cores), and a small heap also means a short GC.
HEAP = ("512m", "512m")
#: Seconds to wait for the whole cluster to form at the first start, and for one node to (re)join.
#: Measured on the shared 2-core machine: one node alone 90-140 s under load; three at once are slower.
START_WAIT = 600.0
#: JIT with C1 only: a node starts in about half the time (measured here under load 9-10: 27-30 s
#: instead of 58-74 s) and runs somewhat slower, which suits a test cluster that is restarted node by
#: node. Pass ``jvm_extra=()`` to :func:`start_cluster` for production-like JIT.
FAST_START_JVM = ("-XX:TieredStopAtLevel=1",)
JOIN_WAIT = 300.0
POLL = 0.5

Progress = Callable[[str], object]


def _quiet(_msg: str) -> None:
    pass


def _request(url: str, method: str = "GET", path: str = "/", body: Any = None, timeout: float = 10.0) -> Any:
    """Decoded JSON answer of one request to a loopback node; raises OSError/ValueError."""
    if not url.startswith(f"http://{ln.BIND_HOST}:"):
        raise ValueError(f"this cluster lives on {ln.BIND_HOST} only, not {url!r}")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@dataclass
class ClusterNode:
    """One node of a :class:`LocalCluster`: fixed name, home and ports; a fresh process per start."""

    number: int  # 1-based
    name: str
    home: Path
    http_port: int
    transport_port: int
    process: ln.LocalNode | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{ln.BIND_HOST}:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()


@dataclass
class LocalCluster:
    """A running cluster started by :func:`start_cluster`."""

    name: str
    base: Path
    nodes: list[ClusterNode]
    heap: tuple[str, str]
    jvm_extra: tuple[str, ...]
    _dist: Path = field(repr=False)
    _java: Path = field(repr=False)
    _ident: tuple[int, int] | None = field(repr=False)
    progress: Progress = field(default=_quiet, repr=False)

    # ------------------------------------------------------------------ addresses
    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url_list(self) -> str:
        """Every node's URL, comma-separated: the form ``OPENSEARCH_URL`` takes for a cluster."""
        return ",".join(self.urls)

    def node(self, number: int) -> ClusterNode:
        return self.nodes[number - 1]

    def running(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.is_running()]

    # ------------------------------------------------------------------ reads
    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """Send one request to the first running node that answers; raises the last error."""
        last: Exception = RuntimeError("no node of the cluster is running")
        for node in self.running():
            try:
                return _request(node.url, method, path, body, timeout)
            except urllib.error.HTTPError:
                raise
            except (OSError, ValueError) as exc:
                last = exc
        raise last

    def health(self, via: ClusterNode | None = None) -> dict[str, Any] | None:
        """``GET /_cluster/health`` from ``via`` (default: any running node); None if nobody answers."""
        try:
            if via is not None:
                return _request(via.url, path="/_cluster/health", timeout=5)
            return self.request("GET", "/_cluster/health", timeout=5)
        except (OSError, ValueError):
            return None

    def manager_name(self) -> str | None:
        """Name of the elected cluster manager, as the running nodes see it."""
        try:
            rows = self.request("GET", "/_cat/cluster_manager?format=json", timeout=5)
        except (OSError, ValueError):
            return None
        return str(rows[0]["node"]) if rows else None

    def manager_index(self) -> int:
        """Number (1-based) of the node that is the elected cluster manager."""
        name = self.manager_name()
        for node in self.nodes:
            if node.name == name:
                return node.number
        raise RuntimeError(f"no elected cluster manager among {[n.name for n in self.nodes]} (got {name!r})")

    def wait_for(
        self,
        *,
        nodes: int | None = None,
        status: str = "green",
        timeout: float = JOIN_WAIT,
        via: ClusterNode | None = None,
    ) -> float:
        """Wait until the cluster has ``nodes`` nodes (default: all) and is at least ``status``;
        return the seconds it took. Raises RuntimeError (with log tails) on timeout."""
        want = len(self.nodes) if nodes is None else nodes
        ok = {"green": ("green",), "yellow": ("green", "yellow")}[status]
        started = time.monotonic()
        seen: dict[str, Any] | None = None
        while time.monotonic() - started < timeout:
            seen = self.health(via)
            if (
                seen
                and seen.get("number_of_nodes") == want
                and seen.get("status") in ok
                and not seen.get("relocating_shards")
                and not seen.get("initializing_shards")
            ):
                return time.monotonic() - started
            time.sleep(POLL)
        raise RuntimeError(
            f"cluster {self.name} not {status} with {want} nodes within {timeout:.0f}s"
            f" (last health: {seen}){self._tails()}"
        )

    # ------------------------------------------------------------------ node lifecycle
    def _files(self, node: ClusterNode, bootstrap: bool) -> dict[str, str]:
        overrides: dict[str, object | None] = {
            "cluster.name": self.name,
            "node.name": node.name,
            "discovery.type": None,  # a real multi-node discovery
            "discovery.seed_hosts": [f"{ln.BIND_HOST}:{n.transport_port}" for n in self.nodes],
        }
        if bootstrap:
            overrides["cluster.initial_cluster_manager_nodes"] = [n.name for n in self.nodes]
        return ln._config_files(
            self._dist,
            node.home,
            self._java / "bin" / "java",
            node.http_port,
            node.transport_port,
            overrides=overrides,
            heap=self.heap,
            jvm_extra=self.jvm_extra,
        )

    def _spawn(self, node: ClusterNode) -> Any:
        if node.is_running():
            raise RuntimeError(f"{node.name} is already running (pid {node.pid})")
        if node.starts and not ln._port_is_free(node.http_port):
            raise RuntimeError(f"port {node.http_port} of {node.name} is taken by another process")
        files = self._files(node, bootstrap=node.starts == 0)
        self.progress(f"starting {node.name} on {node.url} (transport {node.transport_port}, home {node.home})")
        node.process, errors = ln._spawn(
            self._dist, self._java, self._ident, node.home, files, node.url, ephemeral=False, detach=False
        )
        node.starts += 1
        return errors

    def _wait_joined(self, node: ClusterNode, errors: Any, deadline: float) -> None:
        """Until ``node`` answers with its own pid and sees every node of the cluster."""
        proc = node.process._process if node.process else None
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"{node.name} exited with code {proc.returncode} during startup:\n"
                    f"{ln._launch_errors(errors)}{ln._log_tail(node.home, self.name)}"
                )
            h = self.health(node)
            if h and h.get("number_of_nodes") == len(self.nodes) and ln._local_node_pid(node.url) == node.pid:
                errors.close()
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{node.name} did not join within the wait (last health {h}):\n"
                    f"{ln._launch_errors(errors)}{ln._log_tail(node.home, self.name)}"
                )
            time.sleep(POLL)

    def start_node(self, number: int, wait: float = JOIN_WAIT) -> float:
        """Start node ``number`` again (same home, ports and data); return the seconds until it has
        joined the cluster (not until the cluster is green: see :meth:`wait_for`)."""
        node = self.node(number)
        started = time.monotonic()
        errors = self._spawn(node)
        self._wait_joined(node, errors, started + wait)
        took = time.monotonic() - started
        self.progress(f"{node.name} joined after {took:.1f}s (pid {node.pid})")
        return took

    def kill(self, number: int) -> None:
        """SIGKILL node ``number``'s JVM (no shutdown at all: a crash or an OOM kill), then reap it."""
        node = self.node(number)
        if node.process is None or node.pid is None:
            raise RuntimeError(f"{node.name} is not running")
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGKILL)
        node.process.stop(timeout=30)  # reaps the JVM, releases its watchdog; the home is kept
        self.progress(f"killed {node.name} (pid {node.pid})")

    def stop_node(self, number: int, timeout: float = 60) -> None:
        """Stop node ``number`` gracefully (SIGTERM; SIGKILL after ``timeout``); its data is kept."""
        node = self.node(number)
        if node.process is not None:
            node.process.stop(timeout=timeout)
        self.progress(f"stopped {node.name}")

    def rolling_restart(
        self,
        *,
        on_event: Callable[[str, int], object] | None = None,
        order: list[int] | None = None,
        timeout: float = JOIN_WAIT,
    ) -> list[dict[str, Any]]:
        """Restart every node in turn the way the OpenSearch docs describe it: replica allocation set to
        ``primaries``, flush, stop the node, wait until the others see it gone, start it, wait until it
        joined, allocation back to ``all``, wait for green. The elected manager goes last (one election
        instead of several). ``on_event(event, node_number)`` is called with ``"stopping"``, ``"stopped"``,
        ``"started"``, ``"green"``. Returns per-node timings (seconds)."""
        if order is None:
            manager = self.manager_index()
            order = [n.number for n in self.nodes if n.number != manager] + [manager]
        notify = on_event or (lambda _e, _n: None)
        timings = []
        for number in order:
            t0 = time.monotonic()
            self.request(
                "PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": "primaries"}}
            )
            with contextlib.suppress(OSError, ValueError):
                self.request("POST", "/_flush", timeout=60)
            notify("stopping", number)
            self.stop_node(number)
            notify("stopped", number)
            t_stopped = time.monotonic()
            self.wait_for(nodes=len(self.nodes) - 1, status="yellow", timeout=timeout)
            joined = self.start_node(number, wait=timeout)
            notify("started", number)
            self.request("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": None}})
            green = self.wait_for(timeout=timeout)
            notify("green", number)
            timings.append(
                {
                    "node": number,
                    "stop_s": round(t_stopped - t0, 1),
                    "join_s": round(joined, 1),
                    "green_s": round(green, 1),
                    "total_s": round(time.monotonic() - t0, 1),
                }
            )
        return timings

    def stop(self) -> None:
        """Stop every node and delete the cluster folder."""
        for node in self.nodes:
            if node.process is not None:
                node.process.stop(timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)

    def _tails(self) -> str:
        return "".join(f"\n{ln._log_tail(n.home, self.name)}" for n in self.nodes)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = ln._free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _sweep_stale_clusters(base: Path) -> None:
    """Remove cluster folders left by killed runs: none of their nodes' pids is alive (pid files are
    node-controlled: read bounded and link-safe), or no pid file at all after an hour."""
    for folder in base.glob("cluster-*"):
        homes = [h for h in folder.glob("n*") if h.is_dir() and not h.is_symlink()]
        pids = []
        for home in homes:
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(ln._read_untrusted(home, ln.PID_FILE_NAME, 64)))
        if any(ln._pid_alive(p) for p in pids):
            continue
        if pids or time.time() - folder.stat().st_mtime > 3600:
            shutil.rmtree(folder, ignore_errors=True)


def start_cluster(
    n: int = 3,
    *,
    wait: float = START_WAIT,
    heap: tuple[str, str] = HEAP,
    jvm_extra: tuple[str, ...] = FAST_START_JVM,
    progress: Progress = print,
) -> LocalCluster:
    """Start ``n`` nodes at once on 127.0.0.1 and wait until they formed one green cluster.

    Ignores ``OPENSEARCH_URL``: a cluster whose nodes the caller can kill is the point. Raises
    RuntimeError with every node's log tail if it does not form within ``wait`` seconds."""
    if n < 1:
        raise ValueError("a cluster needs at least one node")
    dist = ln.ensure_installed(progress)
    java = ln.java_home(progress)
    ident = ln._node_identity()
    root = ln.cache_dir() / "nodes"
    root.mkdir(exist_ok=True)
    _sweep_stale_clusters(root)
    base = Path(tempfile.mkdtemp(prefix="cluster-", dir=root))  # root-owned
    base.chmod(0o755)  # the node user must reach the homes inside (it cannot write here)
    cid = uuid.uuid4().hex[:8]
    ports = _distinct_ports(2 * n)
    nodes = [
        ClusterNode(
            number=i + 1,
            name=f"seednews-{cid}-n{i + 1}",
            home=base / f"n{i + 1}",
            http_port=ports[2 * i],
            transport_port=ports[2 * i + 1],
        )
        for i in range(n)
    ]
    cluster = LocalCluster(
        name=f"seednews-cluster-{cid}",
        base=base,
        nodes=nodes,
        heap=heap,
        jvm_extra=tuple(jvm_extra),
        _dist=dist,
        _java=java,
        _ident=ident,
        progress=progress,
    )
    started = time.monotonic()
    try:
        for node in nodes:
            node.home = ln._prepare_home(node.home, ident)
            if ident is not None:
                ln._check_traversable(node.home)
        errors = [cluster._spawn(node) for node in nodes]
        deadline = started + wait
        for node, err in zip(nodes, errors, strict=True):
            cluster._wait_joined(node, err, deadline)
        cluster.wait_for(timeout=max(30.0, deadline - time.monotonic()))
    except BaseException:
        cluster.stop()
        raise
    progress(
        f"cluster {cluster.name} is green with {n} nodes after {time.monotonic() - started:.1f}s: {cluster.url_list}"
    )
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cluster", description="Run a local multi-node OpenSearch cluster on 127.0.0.1."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a cluster in the foreground; Ctrl-C stops it and deletes its data")
    run.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args(argv)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        cluster = start_cluster(args.nodes, progress=say)
    except RuntimeError as exc:
        say(f"error: {exc}")
        return 1
    print(f"OPENSEARCH_URL={cluster.url_list}", flush=True)

    def _interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too (a background job ignores SIGINT): stop the nodes, clean up

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
