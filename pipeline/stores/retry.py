"""The retry policy of READS: a read that meets a transient cluster error is tried again, with bounded
exponential back-off and jitter, until a total deadline; everything else fails at once.

Writes already ride through cluster churn (``stores.bulk`` retries bulk requests; every write has an
explicit id). Reads (ledger scans and lookups, planning, counts, alias reads, finalize) had only the
client's own retries (``stores.client.make_client``: a connection error, a timeout or a 502/503/504 is sent
again at once, to the next node), so a node restarting under a run ended it with exit 2. A read changes
nothing, so trying it again is always safe.

**Transient** (:func:`is_transient`): a connection error or timeout; HTTP 429 (busy); 502, 503, 504;
a 500 whose body says a node or shard was lost for a moment (``search_phase_execution_exception``
caused by ``node_not_connected_exception``, ``no_shard_available_action_exception``,
``NodeDisconnectedException`` ...: :data:`TRANSIENT_500_MARKERS`). Not transient: every other 4xx
(400 bad query or mapping, 404 ``index_not_found``) and any other 500, which would fail the same way
again. Inside a scroll also the loss of the scroll itself (``scroll=True``): 404
``search_context_missing_exception`` (the node holding the context restarted) and
``helpers.ScanError`` (shards of the scroll failed); the caller then reads again from the beginning.

**Back-off** (:class:`ReadRetry`): ``first_delay`` doubling per attempt up to ``max_delay``, each delay
drawn in [d/2, d] (jitter: many workers do not come back in step); no attempt starts later than
``deadline`` seconds after the first one (``Settings.read_retry_deadline``,
``SEEDNEWS_READ_RETRY_DEADLINE``, default 60 s: a cluster sends reads to another copy within seconds
of losing a node, and a node gone for good still ends the run within about a minute, as
tests/test_faults.py asks of a crash; a lone node that restarts slowly may want more). Each retry is
logged once at WARNING (logger ``seednews.retry``) with what failed and why; when the deadline is
spent, the last error is raised unchanged (the CLI reports it and exits 2, Airflow retries the task).

Used at the read call sites (``read(client, what, fn, ...)``), not as a wrapper around the client: a
write must never be sent twice by accident. The policy travels with the client: ``make_client`` sets
it from ``Settings`` (:func:`attach`); a client made elsewhere gets the defaults.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.config import DEFAULT_READ_RETRY_DEADLINE  # seconds from the first attempt

T = TypeVar("T")

FIRST_DELAY = 0.5  # seconds before the first retry
MAX_DELAY = 8.0  # the longest wait between two attempts
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
TRANSIENT_500_MARKERS = (
    "node_not_connected",
    "node not connected",
    "nodenotconnected",
    "node_disconnected",
    "nodedisconnected",
    "node_closed",
    "nodeclosed",
    "no_shard_available",
    "no shard available",
    "noshardavailable",
    "connect_transport_exception",
    "send_request_transport_exception",
    "receive_timeout_transport_exception",
)
"""What the body of a 500 says when a node or a shard copy was lost for a moment (lower case)."""
SCROLL_LOST_MARKERS = ("search_context_missing", "no search context found")
ATTRIBUTE = "seednews_read_retry"  # where make_client keeps the policy on the client
log = logging.getLogger("seednews.retry")


def _body_text(exc: BaseException) -> str:
    info = getattr(exc, "info", None)
    try:
        body = json.dumps(info) if isinstance(info, dict | list) else str(info or "")
    except (TypeError, ValueError):
        body = str(info)
    return f"{getattr(exc, 'error', '')} {body} {exc}".lower()


def is_transient(exc: BaseException, *, scroll: bool = False) -> bool:
    """Whether a read that raised ``exc`` may succeed when tried again (see the module docstring)."""
    from opensearchpy import helpers
    from opensearchpy.exceptions import ConnectionError, TransportError

    if isinstance(exc, ConnectionError):  # ConnectionTimeout and SSL errors are ConnectionErrors too
        return not _is_ssl(exc)
    if scroll and isinstance(exc, helpers.ScanError):
        return True
    if not isinstance(exc, TransportError):
        return False
    status = exc.status_code
    if status in TRANSIENT_STATUSES:
        return True
    if status == 500:
        return any(m in _body_text(exc) for m in TRANSIENT_500_MARKERS)
    if status == 404 and scroll:
        return any(m in _body_text(exc) for m in SCROLL_LOST_MARKERS)
    return False


def _is_ssl(exc: BaseException) -> bool:
    from opensearchpy.exceptions import SSLError

    return isinstance(exc, SSLError)  # a certificate problem does not go away by waiting


def describe(exc: BaseException, limit: int = 300) -> str:
    """One line for the log: ``TransportError(500, 'search_phase_execution_exception', '...')``."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not text.startswith(type(exc).__name__):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ReadRetry:
    """Bounded exponential back-off with jitter and a total deadline (seconds)."""

    deadline: float = DEFAULT_READ_RETRY_DEADLINE
    first_delay: float = FIRST_DELAY
    max_delay: float = MAX_DELAY

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``retry`` (1, 2, ...): in [d/2, d], d = min(max, first * 2^(retry-1))."""
        d = min(self.max_delay, self.first_delay * 2 ** min(retry - 1, 32))
        return d / 2 + rand() * d / 2

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        scroll: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> T:
        """``fn()``, tried again on transient errors until ``deadline``; the last error otherwise."""
        started = clock()
        retry = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc, scroll=scroll):
                    raise
                retry += 1
                left = started + self.deadline - clock()
                if left <= 0:
                    log.warning("%s failed again: %s; giving up after %.0fs", what, describe(exc), self.deadline)
                    raise
                wait = min(self.delay(retry, rand), left)
                log.warning(
                    "%s failed (%s); retry %d in %.1fs (gives up %.0fs after the first try)",
                    what,
                    describe(exc),
                    retry,
                    wait,
                    self.deadline,
                )
                sleep(wait)


DEFAULT = ReadRetry()


def attach(client: Any, policy: ReadRetry) -> Any:
    """Keep ``policy`` on ``client`` (``make_client`` does this with the settings' deadline)."""
    setattr(client, ATTRIBUTE, policy)
    return client


def policy_of(client: Any) -> ReadRetry:
    policy = getattr(client, ATTRIBUTE, None)
    return policy if isinstance(policy, ReadRetry) else DEFAULT


def read(client: Any, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` under ``client``'s read policy; ``what`` names it in the log."""
    return policy_of(client).call(what, lambda: fn(*args, **kwargs))


def read_scroll(client: Any, what: str, fn: Callable[[], T]) -> T:
    """A whole scroll (``fn`` reads it from the beginning and returns the result): read again from the
    beginning when it meets a transient error or loses its scroll context, so the result is exact."""
    return policy_of(client).call(what, fn, scroll=True)
