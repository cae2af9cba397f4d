"""Settings, read once at the edge (CLI or DAG task) and passed down; clients are built here.

Secrets (the OpenSearch password) come from the environment or an Airflow connection, never from code,
and ``Settings.__repr__`` never shows them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

DEFAULT_OPENSEARCH_URL = "http://127.0.0.1:9200"
DEFAULT_INDEX_BASE = "seednews-articles"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETENTION = 2  # old article indices kept after a full rebuild swaps the alias


@dataclass(frozen=True)
class Settings:
    opensearch_url: str = DEFAULT_OPENSEARCH_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    timeout: float = DEFAULT_TIMEOUT
    index_base: str = DEFAULT_INDEX_BASE  # the read alias; concrete indices are "<base>-<stamp>"
    retention: int = DEFAULT_RETENTION
    image_relative_base: str | None = None  # site that relative image URLs belong to (None: report "relative")

    @property
    def alias(self) -> str:
        return self.index_base

    @property
    def deadletter_index(self) -> str:
        return f"{self.index_base}-deadletter"

    @property
    def ledger_index(self) -> str:
        return f"{self.index_base}-ledger"

    @property
    def image_cache_index(self) -> str:
        return f"{self.index_base}-imagecache"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """``OPENSEARCH_URL`` (may carry ``user:password@``), ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``,
        ``OPENSEARCH_VERIFY_CERTS`` (``false`` to disable), ``SEEDNEWS_INDEX``, ``SEEDNEWS_IMAGE_BASE``
        (the site relative image URLs such as ``/assets/...`` belong to)."""
        env = dict(os.environ if env is None else env)
        url, user, password = split_credentials(env.get("OPENSEARCH_URL") or DEFAULT_OPENSEARCH_URL)
        settings = cls(
            opensearch_url=url,
            username=env.get("OPENSEARCH_USER") or user,
            password=env.get("OPENSEARCH_PASSWORD") or password,
            verify_certs=env.get("OPENSEARCH_VERIFY_CERTS", "true").lower() not in ("0", "false", "no"),
            index_base=env.get("SEEDNEWS_INDEX") or DEFAULT_INDEX_BASE,
            image_relative_base=env.get("SEEDNEWS_IMAGE_BASE") or None,
        )
        return replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``https://u:p@host:9200`` -> (``https://host:9200``, ``u``, ``p``)."""
    parts = urlsplit(url)
    if not parts.username:
        return url, None, None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), parts.username, parts.password


def make_client(settings: Settings, **kwargs: object):
    """An ``opensearchpy.OpenSearch`` client for ``settings`` (import is local: heavy, and not needed
    by the pure stages)."""
    from opensearchpy import OpenSearch

    auth = (settings.username, settings.password or "") if settings.username else None
    return OpenSearch(
        hosts=[settings.opensearch_url],
        http_auth=auth,
        verify_certs=settings.verify_certs,
        ssl_show_warn=settings.verify_certs,
        timeout=settings.timeout,
        max_retries=3,
        retry_on_timeout=True,
        **kwargs,
    )
