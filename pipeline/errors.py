"""The errors this package raises on purpose, in one tree (as httpx draws its own)::

    SeedNewsError                   every deliberate error of seednews; catch this to catch them all
    ├── ConfigError                 a setting cannot be used as given (also a ValueError); never shows a password
    ├── SeedRootError               the seed location itself is unusable: missing, not a folder (also a ValueError)
    ├── SeedError                   one seed failed one parse step (also a ValueError); ``stage`` names the step.
    │                               Never escapes a run: the file is quarantined with this reason
    ├── InvalidURL                  a URL :mod:`pipeline.urls` cannot parse or canonicalise (also a ValueError);
    │                               the message quotes the URL. Validation quarantines, the image checker says
    │                               ``invalid``
    ├── RunStopped                  the run stopped on purpose before it could do harm (also a RuntimeError)
    │   ├── VanishedFolderError     too many known seed files are gone at once; nothing was deleted
    │   └── ValidationFailed        a full rebuild did not validate; the aliases still point at the old data
    ├── ClusterNotReady             the run's indices did not reach the required health in time (also a
    │                               RuntimeError): an infrastructure error, the task is retried
    ├── ParseWorkerLost             a parse worker process died (killed, out of memory) mid-batch (also a
    │                               RuntimeError); the ledger holds only chunks that landed, the task is retried
    ├── StoreError                  state kept in OpenSearch needs a person (also a RuntimeError)
    │   ├── IndexManagementError    templates, indices or aliases are not what the pipeline expects
    │   ├── LedgerError             the ledger could not be written (a lagging ledger would lie)
    │   └── ImageCacheError         the image-verdict cache could not be written
    └── DashboardsError             bad Dashboards settings or an unreachable Dashboards (also a RuntimeError)

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

from pipeline.types import Stage, short  # a leaf module (standard library only), as this one


class SeedNewsError(Exception):
    """Base class of every error seednews raises on purpose."""


class ConfigError(SeedNewsError, ValueError):
    """A setting that cannot be used as given; the message never contains a password."""


class SeedRootError(SeedNewsError, ValueError):
    """The seed folder itself is unusable (missing, not a folder). Raised: the whole run cannot start."""


class SeedError(SeedNewsError, ValueError):
    """One seed failed one parse step. ``stage`` names the step; ``str()`` is the reason."""

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage


class InvalidURL(SeedNewsError, ValueError):
    """A URL that cannot be parsed or has no canonical form. ``reason`` says why; ``str()`` is the reason
    and the URL, shortened (``URL has no host, got 'https:///x'``)."""

    def __init__(self, reason: str, url: str) -> None:
        super().__init__(f"{reason}, got {short(url)}")
        self.reason = reason


class RunStopped(SeedNewsError, RuntimeError):
    """The run stopped on purpose, before it could do harm."""


class VanishedFolderError(RunStopped):
    """Too many known seed files are gone at once; nothing was deleted."""


class ValidationFailed(RunStopped):
    """A full rebuild did not validate; the aliases still point at the old index and ledger."""


class ClusterNotReady(SeedNewsError, RuntimeError):
    """The run's indices did not reach the required health in time."""


class ParseWorkerLost(SeedNewsError, RuntimeError):
    """A parse worker process (``pipeline.run.parallel``) died while building a chunk."""


class StoreError(SeedNewsError, RuntimeError):
    """State the pipeline keeps in OpenSearch needs a person."""


class IndexManagementError(StoreError):
    """Index management failed in a way that needs a person (validation failed, alias is not an alias)."""


class LedgerError(StoreError):
    """The ledger could not be written: a ledger that silently lags would lie, so the task fails."""


class ImageCacheError(StoreError):
    """The image-verdict cache could not be written."""


class DashboardsError(SeedNewsError, RuntimeError):
    """Bad configuration or an unreachable Dashboards: a usage/infrastructure error (exit 2)."""


__all__ = [
    "ClusterNotReady",
    "ConfigError",
    "DashboardsError",
    "ImageCacheError",
    "IndexManagementError",
    "InvalidURL",
    "LedgerError",
    "ParseWorkerLost",
    "RunStopped",
    "SeedError",
    "SeedNewsError",
    "SeedRootError",
    "StoreError",
    "ValidationFailed",
    "VanishedFolderError",
]
