"""The OpenSearch client a run talks through, made from ``config.Settings`` in one place.

(``opensearchpy`` is imported when a client is made: it is heavy, and the pure stages never need it.)
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Settings
from pipeline.stores import retry
from pipeline.stores.bulk import response_serializer

RETRY_ON_STATUS = (502, 503, 504)  # answers that send a request to another node (all writes are idempotent)

# urllib3 connections kept per node: the run's main thread (reads), its writer thread (bulk, ledger) and the image
# checker's cache calls (asyncio.to_thread) share one client; urllib3's default of 1 made it discard connections
# ("Connection pool is full") and open new ones
CLIENT_POOL_MAXSIZE = 8


def make_client(settings: Settings, *, fast_json: bool = True, **kwargs: Any) -> Any:
    """An ``opensearchpy.OpenSearch`` client for ``settings`` (imports are local: heavy, and not needed
    by the pure stages).

    With several node URLs the client spreads requests over them (round robin) and a request that
    meets a connection error, a timeout or a 502/503/504 is sent again to the next node, up to
    ``max_retries`` times; a failed node is left out for ``dead_timeout`` seconds (doubling while it
    keeps failing). Every write the pipeline makes has an explicit id (articles also an external
    version), so a resent request never duplicates anything. With ``sniff`` the client also asks the
    cluster for its nodes (at start, after a connection failure and every minute): only where the
    nodes' published addresses are reachable from the workers and match their certificates. With
    ``fast_json`` (a run's ``Tuning.fast_json``) responses are decoded by orjson
    (``pipeline.stores.bulk.response_serializer``); without, by the client's json. Reads also carry
    their own retry policy (``pipeline.stores.retry``: transient errors retried with back-off for
    ``read_retry_deadline`` s)."""
    from opensearchpy import OpenSearch

    auth = (settings.username, settings.password or "") if settings.username else None
    if settings.ca_certs:
        kwargs.setdefault("ca_certs", settings.ca_certs)
    if settings.sniff:
        kwargs.setdefault("sniff_on_start", True)
        kwargs.setdefault("sniff_on_connection_fail", True)
        kwargs.setdefault("sniffer_timeout", 60)
        kwargs.setdefault("sniff_timeout", min(10.0, settings.timeout))
    kwargs.setdefault("serializer", response_serializer(fast_json))
    kwargs.setdefault("retry_on_status", RETRY_ON_STATUS)
    kwargs.setdefault("dead_timeout", settings.dead_timeout)
    kwargs.setdefault("pool_maxsize", CLIENT_POOL_MAXSIZE)
    client = OpenSearch(
        hosts=list(settings.opensearch_urls),
        http_auth=auth,
        verify_certs=settings.verify_certs,
        ssl_show_warn=settings.verify_certs,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        retry_on_timeout=True,
        **kwargs,
    )
    return retry.attach(client, retry.ReadRetry(deadline=settings.read_retry_deadline))
