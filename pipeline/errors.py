"""The errors this package raises on purpose, in one tree (as httpx draws its own), with what a task that
met each one does: ``retry`` (the cluster was busy or unreachable, a worker died: trying again can succeed,
and every write is idempotent) or ``fail`` (a usage, configuration or data error: retrying cannot cure it, so
the task fails at once and a person hears of it). The column is each class's ``retryable``; the DAG reads it
through :func:`fail_fast_as`::

    SeedNewsError                   retry  every deliberate error of seednews; catch this to catch them all
    ├── ConfigError                 fail   a setting cannot be used as given (also a ValueError); never shows
    │                                      a password
    ├── SeedRootError               fail   the seed location itself is unusable: missing, not a folder (also
    │                                      a ValueError)
    ├── SeedError                   fail   one seed failed one parse step (also a ValueError); ``stage`` names
    │                                      the step. Never escapes a run: the file is quarantined with this reason
    ├── InvalidURL                  fail   a URL :mod:`pipeline.urls` cannot parse or canonicalise (also a
    │                                      ValueError); the message quotes the URL. Validation quarantines, the
    │                                      image checker says ``invalid``
    ├── RunStopped                  fail   the run stopped on purpose before it could do harm (also a RuntimeError)
    │   ├── VanishedFolderError     fail   too many known seed files are gone at once; nothing was deleted
    │   └── ValidationFailed        fail   a full rebuild did not validate; the aliases still point at the old data
    ├── ClusterNotReady             retry  the run's indices did not reach the required health in time (also a
    │                                      RuntimeError): an infrastructure error
    ├── ParseWorkerLost             retry  a parse worker process died (killed, out of memory) mid-batch (also a
    │                                      RuntimeError); the ledger holds only chunks that landed
    ├── StoreError                  fail   state kept in OpenSearch is not as expected or was not written (also
    │   │                                  a RuntimeError)
    │   ├── IndexManagementError    fail   templates, indices or aliases are not what the pipeline expects
    │   ├── LedgerError             retry  OpenSearch refused ledger entries after the client's own retries
    │   │                                  (a lagging ledger would lie)
    │   ├── DeadLetterError         retry  OpenSearch refused dead letters after the client's own retries (a
    │   │                                  refused document is never dropped: the batch is tried again)
    │   ├── PlanNotFound            fail   a batch's planned files are no longer stored (a later run replaced
    │   │                                  the plan): plan the run again
    │   ├── LinkError               retry  OpenSearch refused articles whose related links were rewritten (the
    │   │                                  finalize that links them is tried again; linking is idempotent)
    │   └── ImageCacheError         retry  OpenSearch refused image verdicts for the cache
    └── DashboardsError             fail   bad Dashboards settings or an unreachable Dashboards (also a
                                           RuntimeError)

Not in the tree, on purpose: the hardened YAML loader's errors (:mod:`pipeline.safety.yamlsafe`) are
``yaml.MarkedYAMLError`` subclasses so they carry a position, and the SSRF guard's
``BlockedAddressError`` / ``DNSLookupError`` (:mod:`pipeline.safety.netsafe`) are ``OSError``s so the
HTTP client treats them as failed connections. Neither leaves its stage: the first becomes a
:class:`SeedError` (a quarantine), the second an image verdict. Errors of the OpenSearch client
(``opensearchpy.exceptions``) propagate unchanged: they are infrastructure errors, and the task that
met them is retried (every write is idempotent).

The CLI maps ``SeedNewsError`` and infrastructure errors to exit code 2 with one readable line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

from pipeline.types import Stage, short  # a leaf module (standard library only), as this one


class SeedNewsError(Exception):
    """Base class of every error seednews raises on purpose. ``retryable`` says whether a task that met
    it should be tried again; every class of the tree sets its own (the module docstring's column)."""

    retryable: ClassVar[bool] = True


class ConfigError(SeedNewsError, ValueError):
    """A setting that cannot be used as given; the message never contains a password."""

    retryable = False


class SeedRootError(SeedNewsError, ValueError):
    """The seed folder itself is unusable (missing, not a folder). Raised: the whole run cannot start."""

    retryable = False


class SeedError(SeedNewsError, ValueError):
    """One seed failed one parse step. ``stage`` names the step; ``str()`` is the reason."""

    retryable = False

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage


class InvalidURL(SeedNewsError, ValueError):
    """A URL that cannot be parsed or has no canonical form. ``reason`` says why; ``str()`` is the reason
    and the URL, shortened (``URL has no host, got 'https:///x'``)."""

    retryable = False

    def __init__(self, reason: str, url: str) -> None:
        super().__init__(f"{reason}, got {short(url)}")
        self.reason = reason


class RunStopped(SeedNewsError, RuntimeError):
    """The run stopped on purpose, before it could do harm."""

    retryable = False


class VanishedFolderError(RunStopped):
    """Too many known seed files are gone at once; nothing was deleted."""

    retryable = False


class ValidationFailed(RunStopped):
    """A full rebuild did not validate; the aliases still point at the old index and ledger."""

    retryable = False


class ClusterNotReady(SeedNewsError, RuntimeError):
    """The run's indices did not reach the required health in time."""

    retryable = True


class ParseWorkerLost(SeedNewsError, RuntimeError):
    """A parse worker process (``pipeline.run.parallel``) died while building a chunk."""

    retryable = True


class StoreError(SeedNewsError, RuntimeError):
    """State the pipeline keeps in OpenSearch is not as expected or was not written."""

    retryable = False


class IndexManagementError(StoreError):
    """Index management failed in a way that needs a person (validation failed, alias is not an alias)."""

    retryable = False


class LedgerError(StoreError):
    """OpenSearch refused ledger entries after the client's own retries: a ledger that silently lags
    would lie, so the task fails (and is tried again: a busy node or a shard moving often causes it)."""

    retryable = True


class PlanNotFound(StoreError):
    """A batch's planned files are not in the plan index (``pipeline.run.handoff``): a later run replaced
    the plan. Retrying the batch cannot bring them back; planning the run again can."""

    retryable = False


class DeadLetterError(StoreError):
    """OpenSearch refused the dead letters of documents it refused (the task is tried again: the documents
    must be kept for replay, and a busy node or a shard moving often causes it)."""

    retryable = True


class LinkError(StoreError):
    """OpenSearch refused articles whose links (``related.linked``, ``cited_by``) were being rewritten; the
    task is tried again (a busy node or a moving shard often causes it, and linking is idempotent)."""

    retryable = True


class ImageCacheError(StoreError):
    """OpenSearch refused image verdicts for the cache (the task is tried again, as for the ledger)."""

    retryable = True


class DashboardsError(SeedNewsError, RuntimeError):
    """Bad configuration or an unreachable Dashboards: a usage/infrastructure error (exit 2)."""

    retryable = False


@contextmanager
def fail_fast_as(fail: Callable[[str], Exception]) -> Iterator[None]:
    """Turns a ``SeedNewsError`` whose class is not ``retryable`` into ``fail(message)`` (the same message,
    chained to the original); a retryable one and every other error pass through unchanged, so whoever runs
    the task (Airflow) tries it again. ``with fail_fast_as(AirflowFailException): ...``"""
    try:
        yield
    except SeedNewsError as exc:
        if exc.retryable:
            raise
        raise fail(str(exc)) from exc


__all__ = [
    "ClusterNotReady",
    "ConfigError",
    "DashboardsError",
    "ImageCacheError",
    "IndexManagementError",
    "InvalidURL",
    "LedgerError",
    "ParseWorkerLost",
    "PlanNotFound",
    "RunStopped",
    "SeedError",
    "SeedNewsError",
    "SeedRootError",
    "StoreError",
    "ValidationFailed",
    "VanishedFolderError",
    "fail_fast_as",
]
