"""Replicas and health of the indices a run writes: what makes one lost node a non-event.

- **Replicas.** The templates in ``mappings/`` say ``auto_expand_replicas: "0-1"``: no replica on a
  single node (a dev node stays green), one replica as soon as the cluster has two nodes or more. With
  ``Settings.replicas`` (``SEEDNEWS_REPLICAS``) the run pins its indices to that instead (e.g. ``1`` in
  production, so a cluster that shrinks to one node shows yellow instead of silently dropping its only
  copy): :func:`apply_replicas` sets it on the run's existing indices at ``prepare`` (index settings
  are dynamic; a fresh rebuild index gets it right after creation). The dead-letter index, normally
  created at the first refusal, is then created up front so it gets the setting too.
- **Health.** Before a run writes (``prepare``) and before each batch, :func:`wait_for_health` waits until
  the run's indices are ``Settings.health_status`` (default ``yellow``: every primary is active, so writes
  are safe; replicas may still be rebuilding after a node loss) for at most ``Settings.health_timeout``
  seconds, then raises :class:`ClusterNotReady` (an infrastructure error: the CLI exits 2, Airflow retries
  the task). ``green`` is stricter and would stall every run while a lost node's replicas are rebuilt.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ClusterNotReady
from pipeline.stores import indices as index_store
from pipeline.stores.retry import read

log = logging.getLogger("seednews.cluster")


def replica_settings(replicas: str) -> dict[str, Any]:
    """``"1"`` -> a fixed count (auto-expand off); ``"0-1"`` / ``"1-all"`` -> that auto-expand range."""
    if "-" in replicas:
        return {"auto_expand_replicas": replicas}
    return {"auto_expand_replicas": "false", "number_of_replicas": int(replicas)}


def run_indices(client, settings: Settings, target: str, ledger_index: str) -> list[str]:
    """The indices (or aliases) a run writes that exist now: articles, ledger, dead letters, image cache."""
    names = [target, ledger_index]
    for optional in (settings.deadletter_index, settings.image_cache_index):
        if read(client, f"index {optional}: exists", client.indices.exists, index=optional):
            names.append(optional)
    return names


def apply_replicas(client, settings: Settings, indices: list[str]) -> None:
    """Pin ``settings.replicas`` on ``indices`` (no-op when unset: the templates' auto-expand applies)."""
    if settings.replicas is None:
        return
    if not client.indices.exists(index=settings.deadletter_index):
        # otherwise created mid-run from its template (auto-expand), without the pinned count
        client.indices.put_index_template(
            name=settings.deadletter_index,
            body=index_store.load_template(index_store.DEADLETTER_TEMPLATE, settings.deadletter_index),
        )
        try:
            client.indices.create(index=settings.deadletter_index)
        except Exception:
            if not client.indices.exists(index=settings.deadletter_index):  # lost a creation race: fine
                raise
        indices = [*indices, settings.deadletter_index]
    client.indices.put_settings(
        index=",".join(dict.fromkeys(indices)), body={"index": replica_settings(settings.replicas)}
    )


def wait_for_health(client, settings: Settings, indices: list[str]) -> dict[str, Any]:
    """Block until ``indices`` are at least ``settings.health_status``; the health answer. Raises
    ``ClusterNotReady`` after ``settings.health_timeout`` seconds, saying what is missing."""
    from opensearchpy.exceptions import TransportError

    wait = settings.health_timeout
    try:
        health = read(  # a node restarting answers with connection errors or 503 first: retried (stores.retry)
            client,
            "cluster health",
            client.cluster.health,
            index=",".join(indices),
            wait_for_status=settings.health_status,
            timeout=f"{wait:g}s",
            request_timeout=wait + settings.timeout,
        )
    except TransportError as exc:
        if getattr(exc, "status_code", None) != 408:  # 408: the wait timed out (the body is the health)
            raise
        health = exc.info if isinstance(exc.info, dict) else {}
        health.setdefault("timed_out", True)
    if health.get("timed_out"):
        raise ClusterNotReady(
            f"indices {', '.join(indices)} not {settings.health_status} after {wait:g}s (SEEDNEWS_HEALTH_TIMEOUT):"
            f" status {health.get('status')}, {health.get('number_of_nodes')} nodes,"
            f" {health.get('unassigned_shards')} shards unassigned, {health.get('initializing_shards')} initializing"
        )
    if health.get("status") != "green":
        log.info(
            "indices %s are %s (%s shards unassigned); writing",
            ",".join(indices),
            health.get("status"),
            health.get("unassigned_shards"),
        )
    return health


def ready_for_writes(client, settings: Settings, target: str, ledger_index: str, *, pin: bool = True) -> dict[str, Any]:
    """What ``prepare`` (``pin=True``: replicas too) and each batch do before writing."""
    indices = run_indices(client, settings, target, ledger_index)
    if pin:
        apply_replicas(client, settings, indices)
    return wait_for_health(client, settings, indices)
