"""The checking engine: HEAD with GET fallback, redirects hop by hop (each re-validated), retries,
whole-request deadlines, the verdict cache; ``check_images`` is its synchronous entry point.

(Over 400 lines on purpose: one request's state machine — method fallback, each redirect hop re-checked
against the SSRF policy, retries and one deadline — reads as one piece; split, its invariants would be
spread over modules.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import aiohttp
from yarl import URL

from pipeline.safety.netsafe import (
    AddressPolicy,
    BlockedAddressError,
    DNSLookupError,
    GuardedResolver,
    HostResolver,
    make_connector,
    system_resolve,
)
from pipeline.stages.images.cache import (
    CACHEABLE_STATUSES,
    VerdictCache,
    is_fresh,
)
from pipeline.stages.images.config import (
    GENERIC_CONTENT_TYPES,
    HEAD_FALLBACK_STATUSES,
    REDIRECT_STATUSES,
    RETRY_STATUSES,
    ImageCheckConfig,
    _to_epoch,
)
from pipeline.stages.images.responses import (
    _clean,
    _exc_chain,
    _http_reason,
    _show,
    parse_retry_after,
    sniff_image,
)
from pipeline.stages.images.urls import _Early, _host_problem, prepare_url
from pipeline.times import iso_utc
from pipeline.types import ImageStatus, ImageVerdict

log = logging.getLogger("pipeline.stages.images")

# --------------------------------------------------------------------------- the checker


@dataclass
class _Outcome:
    status: ImageStatus
    http_code: int | None
    reason: str
    final_url: str | None
    cacheable: bool = True
    whole_url: bool = False  # the reason is about the whole URL (its budget), not about the last hop


class _BudgetSpent(Exception):
    """The URL's time budget ran out before or during a request."""


class _HostGivenUp(Exception):
    """The origin stopped answering earlier in this run; the request was not made."""


def _secs(x: float) -> str:
    return f"{round(x, 1):g} s"


@dataclass
class _Budget:
    """Time budget of one URL over all its hops and retries; the clock starts at its first request."""

    seconds: float
    started: float | None = None
    redirects: int = 0
    retries: int = 0

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def gave_up(self, took: float, why: str, code: int | None, final: str) -> _Outcome:
        r, t = self.redirects, self.retries
        counts = f"{r} redirect{'' if r == 1 else 's'}, {t} retr{'y' if t == 1 else 'ies'}"
        return _Outcome("timeout", code, f"gave up after {_secs(took)} ({counts}): {why}", final, whole_url=True)

    def spent(self, code: int | None, final: str) -> _Outcome:
        return self.gave_up(self.seconds, f"the {_secs(self.seconds)} budget per URL is spent", code, final)


@dataclass
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    peer: str | None


class ImageChecker:
    """Asynchronous engine behind :func:`check_images`. One instance = one run (one session,
    one DNS memo, shared connection pool). Use as ``async with ImageChecker(cfg) as c``."""

    def __init__(
        self,
        config: ImageCheckConfig = ImageCheckConfig(),
        *,
        resolver: HostResolver | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.policy = AddressPolicy(config.allow_networks)
        self.guard = GuardedResolver(self.policy, resolver or system_resolve)
        self._session = session
        self._own_session = session is None
        self._global: asyncio.Semaphore | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._host_timeouts: dict[str, int] = {}  # origin -> consecutive whole-request timeouts
        self._headers = {"User-Agent": config.user_agent, "Accept": "image/*,*/*;q=0.5", "Accept-Encoding": "identity"}
        self.requests_made = 0

    async def __aenter__(self) -> ImageChecker:
        self._global = asyncio.Semaphore(self.config.concurrency)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=make_connector(self.policy, self.guard, verify_tls=self.config.verify_tls),
                trust_env=False,  # never route through HTTP(S)_PROXY: the proxy would pick the address
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout + 1.0),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("Accept-Encoding",),
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _host_sem(self, host: str) -> asyncio.Semaphore:
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(self.config.per_host)
        return sem

    async def check_url(self, url: URL) -> _Outcome:
        """Check one absolute, statically valid URL (see :func:`prepare_url`)."""
        cfg = self.config
        current = url
        code: int | None = None
        budget = _Budget(cfg.url_budget)
        for _hop in range(cfg.max_redirects + 1):
            outcome_or_location = await self._check_hop(current, budget)
            if isinstance(outcome_or_location, _Outcome):
                if (
                    code is not None
                    and outcome_or_location.status not in ("ok", "broken", "not_image")
                    and not outcome_or_location.whole_url
                ):
                    # say where a redirect led when the last hop failed without an HTTP answer
                    outcome_or_location.reason = f"redirect to {current}: {outcome_or_location.reason}"
                return outcome_or_location
            code, location = outcome_or_location
            try:
                nxt = current.join(URL(location)).with_fragment(None)
                problem = _host_problem(nxt)
            except Exception:  # noqa: BLE001 - whatever yarl makes of a hostile Location, it is this URL's verdict
                return _Outcome(
                    "invalid", code, f"HTTP {code} redirect to an unparsable Location {_show(location)}", str(current)
                )
            if problem is not None:
                return _Outcome(
                    problem.status,
                    code,
                    f"redirect to {nxt}: {problem.reason}",
                    str(nxt),
                    cacheable=problem.status != "invalid",
                )
            current = nxt
            budget.redirects += 1
        return _Outcome("broken", code, f"too many redirects (more than {cfg.max_redirects})", str(current))

    async def _check_hop(self, url: URL, budget: _Budget) -> _Outcome | tuple[int, str]:
        """One URL, no redirect following: an outcome, or ``(code, Location)`` for a redirect."""
        cfg = self.config
        final = str(url)
        host = url.raw_host or ""
        origin = f"{host}:{url.port}"
        try:
            await self.guard.lookup(host)
        except BlockedAddressError as exc:
            return _Outcome("blocked", None, str(exc), final)
        except DNSLookupError as exc:
            return _Outcome("unreachable", None, str(exc), final)
        except OSError as exc:
            return _Outcome("unreachable", None, f"DNS lookup failed for {host!r}: {exc}", final)

        method = "HEAD"
        attempt = 0
        last_code: int | None = None
        while True:
            try:
                resp = await self._request(method, url, origin, budget)
            except _BudgetSpent:
                return budget.spent(last_code, final)
            except _HostGivenUp:
                n = self._host_timeouts.get(origin, 0)
                return _Outcome(
                    "timeout",
                    None,
                    f"not tried: {origin} did not answer {n} requests in a row within {cfg.timeout:g}s",
                    final,
                    cacheable=False,  # no verdict on this URL: the next run tries it
                )
            except BaseException as exc:
                if not isinstance(exc, Exception) or isinstance(exc, asyncio.CancelledError):
                    raise
                return self._error_outcome(exc, url)
            code = last_code = resp.status
            if code in REDIRECT_STATUSES:
                location = resp.headers.get("Location")
                if not location:
                    return _Outcome("broken", code, _http_reason(code, " without a Location header"), final)
                return code, location
            if code in RETRY_STATUSES:
                wait = parse_retry_after(resp.headers.get("Retry-After"), time.time())
                if attempt < cfg.retries:
                    if wait is None:
                        wait = min(cfg.max_retry_after, cfg.backoff * 2**attempt) * (0.5 + random.random() / 2)
                    if wait <= cfg.max_retry_after:
                        left = budget.remaining()
                        if wait >= left:  # not waited for: the budget would be spent asleep
                            return budget.gave_up(
                                budget.elapsed(),
                                f"{_http_reason(code)} asks to wait {_secs(wait)}, more than the "
                                f"{_secs(max(left, 0.0))} left of the {_secs(budget.seconds)} budget per URL",
                                code,
                                final,
                            )
                        attempt += 1
                        budget.retries += 1
                        await asyncio.sleep(wait)
                        continue
                    return _Outcome(
                        "broken",
                        code,
                        _http_reason(
                            code, f" (Retry-After {wait:.0f}s is longer than the {cfg.max_retry_after:g}s cap)"
                        ),
                        final,
                    )
                return _Outcome("broken", code, _http_reason(code, f" after {attempt + 1} attempts"), final)
            ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if method == "HEAD" and (
                code in HEAD_FALLBACK_STATUSES or (200 <= code < 300 and ctype in GENERIC_CONTENT_TYPES)
            ):
                method = "GET"
                continue
            if code >= 400:
                return _Outcome("broken", code, _http_reason(code), final)
            if not 200 <= code < 300:
                return _Outcome("broken", code, _http_reason(code, " (unexpected status for an image)"), final)
            if ctype.startswith("image/"):
                return _Outcome("ok", code, f"HTTP {code}, {ctype}", final)
            if ctype in GENERIC_CONTENT_TYPES:
                kind = sniff_image(resp.body)
                shown = ctype or "no content type"
                if kind:
                    return _Outcome("ok", code, f"HTTP {code}, {shown} but the bytes are {kind}", final)
                return _Outcome(
                    "not_image", code, f"HTTP {code}, {shown} and the bytes are not a known image format", final
                )
            return _Outcome("not_image", code, f"content type {ctype!r} is not an image", final)

    async def _request(self, method: str, url: URL, origin: str, budget: _Budget) -> _Response:
        assert self._global is not None
        cfg = self.config
        async with self._host_sem(origin), self._global:
            if cfg.host_give_up and self._host_timeouts.get(origin, 0) >= cfg.host_give_up:
                raise _HostGivenUp
            budget.start()
            limit = min(cfg.timeout, budget.remaining())
            if limit <= 0:
                raise _BudgetSpent
            self.requests_made += 1
            try:
                resp = await self._request_within(method, url, limit)
            except TimeoutError:
                if limit < cfg.timeout:
                    raise _BudgetSpent from None
                self._host_timeouts[origin] = self._host_timeouts.get(origin, 0) + 1
                raise
            self._host_timeouts[origin] = 0
            return resp

    async def _request_within(self, method: str, url: URL, limit: float) -> _Response:
        assert self._session is not None
        cfg = self.config
        async with asyncio.timeout(limit):  # whole request: connect, headers and body
            async with self._session.request(
                method, url, headers=self._headers, allow_redirects=False, ssl=bool(cfg.verify_tls)
            ) as resp:
                peer = None
                conn = resp.connection
                if conn is not None and conn.transport is not None:
                    pn = conn.transport.get_extra_info("peername")
                    peer = str(pn[0]) if pn else None
                if peer is not None and not self.policy.allows(peer):  # belt and braces
                    resp.close()
                    raise BlockedAddressError(self.policy.block_reason(peer) or "blocked")
                body = b""
                if method == "GET":
                    ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
                    small = resp.content_length is not None and resp.content_length <= cfg.max_bytes
                    # read to sniff an untyped body, or a small body whole so the connection is reused
                    if (ctype in GENERIC_CONTENT_TYPES or small) and cfg.max_bytes:
                        chunks: list[bytes] = []
                        size = 0
                        while size < cfg.max_bytes:
                            chunk = await resp.content.read(cfg.max_bytes - size)
                            if not chunk:
                                break
                            chunks.append(chunk)
                            size += len(chunk)
                        body = b"".join(chunks)
                    if not resp.content.is_eof():
                        resp.close()  # drop the connection rather than download the rest
                return _Response(resp.status, resp.headers, body, peer)

    def _error_outcome(self, exc: Exception, url: URL) -> _Outcome:
        final = str(url)
        chain = list(_exc_chain(exc))
        for e in chain:
            if isinstance(e, BlockedAddressError):
                return _Outcome("blocked", None, str(e), final)
        if any(isinstance(e, (asyncio.TimeoutError, TimeoutError)) for e in chain):
            return _Outcome("timeout", None, f"no complete response within {self.config.timeout:g}s", final)
        target = f"{url.raw_host}:{url.port}"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return _Outcome(
                "unreachable", None, f"TLS certificate of {url.raw_host} not accepted: {exc.certificate_error}", final
            )
        if isinstance(exc, aiohttp.ClientSSLError):
            return _Outcome("unreachable", None, f"TLS handshake with {target} failed", final)
        if isinstance(exc, aiohttp.ClientConnectorError):
            os_err = exc.os_error
            detail = os_err.strerror or str(os_err) if os_err is not None else str(exc)
            return _Outcome("unreachable", None, f"cannot connect to {target}: {detail}", final)
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return _Outcome("unreachable", None, f"{target} closed the connection without a response", final)
        if isinstance(exc, (aiohttp.ClientResponseError, aiohttp.ClientPayloadError)):
            return _Outcome("unreachable", None, f"invalid HTTP response from {target}: {exc}", final)
        if isinstance(exc, aiohttp.InvalidURL):
            return _Outcome("invalid", None, f"URL rejected by the HTTP client: {exc}", final, cacheable=False)
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            return _Outcome("unreachable", None, f"request to {target} failed: {type(exc).__name__}: {exc}", final)
        log.exception("unexpected error checking %s", url)
        return _Outcome("unreachable", None, f"unexpected error: {type(exc).__name__}: {exc}", final)


# --------------------------------------------------------------------------- public sync API


async def check_images_async(
    urls: Iterable[str],
    config: ImageCheckConfig = ImageCheckConfig(),
    cache: VerdictCache | None = None,
    now: datetime | float | None = None,
    *,
    resolver: HostResolver | None = None,
    session: aiohttp.ClientSession | None = None,
    failures: dict[str, Exception] | None = None,
) -> dict[str, ImageVerdict]:
    """Async form of :func:`check_images` (same arguments). Cache calls are made in a thread."""
    fixed_now = _to_epoch(now)
    run_start = fixed_now if fixed_now is not None else time.time()

    def stamp() -> str:
        return iso_utc(fixed_now if fixed_now is not None else time.time())

    results: dict[str, ImageVerdict] = {}
    to_check: dict[str, list[str]] = {}  # absolute URL -> the raw URLs that map onto it
    prepared: dict[str, URL] = {}
    seen: set[str] = set()
    order: list[str] = []
    for raw in urls:
        if raw in seen:
            continue
        seen.add(raw)
        order.append(raw)
        try:
            url = prepare_url(raw, config.relative_base)
        except _Early as early:
            results[raw] = ImageVerdict(raw, early.status, early.http_code, _clean(early.reason), stamp(), None)
            continue
        except Exception as exc:
            if failures is None:
                raise
            failures[raw] = exc  # a bug preparing this URL: the caller makes it its document's outcome
            order.pop()
            continue
        key = str(url)
        if key not in to_check:
            to_check[key] = []
            prepared[key] = url
        to_check[key].append(raw)

    cached: dict[str, ImageVerdict] = {}
    if cache is not None and to_check:
        try:
            found = await asyncio.to_thread(cache.get_many, list(to_check))
            cached = {
                k: v
                for k, v in found.items()
                if k in to_check and is_fresh(v, run_start, ok_ttl=config.ok_ttl, transient_ttl=config.transient_ttl)
            }
        except Exception as exc:  # noqa: BLE001 - the cache is an optimisation, never a failure
            log.warning("image cache lookup failed, checking without it: %s", exc)

    pending = [k for k in to_check if k not in cached]
    fresh: dict[str, ImageVerdict] = {}
    uncacheable: set[str] = set()
    if pending:
        async with ImageChecker(config, resolver=resolver, session=session) as checker:
            window = asyncio.Semaphore(max(1024, config.concurrency * 8))

            async def one(key: str) -> None:
                try:
                    out = await checker.check_url(prepared[key])
                except Exception as exc:
                    log.exception("unexpected error checking %s", key)
                    out = _Outcome(
                        "unreachable", None, f"unexpected error: {type(exc).__name__}: {exc}", key, cacheable=False
                    )
                finally:
                    window.release()
                fresh[key] = ImageVerdict(key, out.status, out.http_code, _clean(out.reason), stamp(), out.final_url)
                if not out.cacheable:
                    uncacheable.add(key)

            tasks = []
            for key in pending:
                await window.acquire()
                tasks.append(asyncio.ensure_future(one(key)))
            await asyncio.gather(*tasks)
            log.info(
                "image check: %d URLs, %d cached, %d checked with %d HTTP requests",
                len(to_check),
                len(cached),
                len(pending),
                checker.requests_made,
            )

        if cache is not None:
            storable = {k: v for k, v in fresh.items() if k not in uncacheable and v.status in CACHEABLE_STATUSES}
            if storable:
                try:
                    await asyncio.to_thread(cache.put_many, storable)
                except Exception as exc:  # noqa: BLE001
                    log.warning("image cache write failed (%d verdicts not cached): %s", len(storable), exc)

    for key, raws in to_check.items():
        v = cached.get(key) or fresh[key]
        for raw in raws:
            results[raw] = replace(v, url=raw)
    return {raw: results[raw] for raw in order}


def check_images(
    urls: Iterable[str],
    config: ImageCheckConfig = ImageCheckConfig(),
    cache: VerdictCache | None = None,
    now: datetime | float | None = None,
    *,
    resolver: HostResolver | None = None,
    failures: dict[str, Exception] | None = None,
) -> dict[str, ImageVerdict]:
    """Check every URL once (duplicates removed) and return ``{url as given: verdict}``.

    Fresh cached verdicts are used without any request; new network verdicts are written to the
    cache. ``now`` (datetime or epoch seconds) fixes ``checked_at`` and the cache age reference.
    ``resolver`` replaces DNS (``async host -> [ip, ...]``). Never raises for a bad URL or a bad
    host; raises only for programming errors. With ``failures``, a URL whose preparation raised
    something unexpected (a bug: ours or the URL parser's) is left out of the result and its exception
    put there instead, so the caller can settle the documents carrying it and go on. Runs its own
    event loop (in a worker thread when the caller is already inside one).
    """
    coro = check_images_async(list(urls), config, cache, now, resolver=resolver, failures=failures)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
