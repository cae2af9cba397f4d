"""Settings, read once at the edge (CLI or DAG task) and passed down; clients are built here.

Secrets (the OpenSearch password) come from the environment or an Airflow connection, never from code,
and ``Settings.__repr__`` never shows them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.errors import ConfigError

DEFAULT_OPENSEARCH_URL = "http://127.0.0.1:9200"
DEFAULT_INDEX_BASE = "seednews-articles"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETENTION = 2  # old article indices kept after a full rebuild swaps the alias
DEFAULT_MAX_RETRIES = 3  # client-side retries of one request (connection errors, timeouts)
TRUE_WORDS = ("1", "true", "yes", "on", "y", "t")
FALSE_WORDS = ("0", "false", "no", "off", "n", "f", "")


def parse_bool(value: object, *, name: str = "value", default: bool | None = None) -> bool:
    """``True``/``False``, ``1``/``0``, ``"true"``/``"false"``, ``"yes"``/``"no"``, ``"on"``/``"off"``
    (any case). ``None`` gives ``default`` (an error if there is none); anything else is refused, so a
    typo never silently turns TLS verification on or off."""
    if value is None:
        if default is None:
            raise ConfigError(f"{name}: a boolean is required")
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}: {value!r} is not a boolean (use true/false)")


@dataclass(frozen=True)
class Settings:
    opensearch_url: str = DEFAULT_OPENSEARCH_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None  # CA bundle (PEM) to verify the cluster's certificate with
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
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

    @property
    def display_url(self) -> str:
        """The URL as it may be printed: never with credentials."""
        return redact_url(self.opensearch_url)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """``OPENSEARCH_URL`` (may carry ``user:password@``), ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``,
        ``OPENSEARCH_VERIFY_CERTS`` (``false`` to disable), ``OPENSEARCH_CA_CERTS`` (a PEM bundle),
        ``OPENSEARCH_TIMEOUT`` (seconds), ``SEEDNEWS_INDEX``, ``SEEDNEWS_IMAGE_BASE``
        (the site relative image URLs such as ``/assets/...`` belong to)."""
        env = dict(os.environ if env is None else env)
        url, user, password = split_credentials(env.get("OPENSEARCH_URL") or DEFAULT_OPENSEARCH_URL)
        settings = cls(
            opensearch_url=url,
            username=env.get("OPENSEARCH_USER") or user,
            password=env.get("OPENSEARCH_PASSWORD") or password,
            verify_certs=parse_bool(env.get("OPENSEARCH_VERIFY_CERTS"), name="OPENSEARCH_VERIFY_CERTS", default=True),
            ca_certs=env.get("OPENSEARCH_CA_CERTS") or None,
            timeout=float(env.get("OPENSEARCH_TIMEOUT") or DEFAULT_TIMEOUT),
            index_base=env.get("SEEDNEWS_INDEX") or DEFAULT_INDEX_BASE,
            image_relative_base=env.get("SEEDNEWS_IMAGE_BASE") or None,
        )
        return replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]


def _mask(url: str) -> str:
    """Whatever sits between ``scheme://user:`` and the last ``@`` becomes ``***`` (works on URLs
    that ``urlsplit`` cannot take apart, e.g. with a raw ``#`` in the password)."""
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(.*)@([^@]*)$", url, re.S)
    if not m:
        return url
    user = m.group(2).split(":", 1)[0]
    return f"{m.group(1)}{user}:***@{m.group(3)}"


def redact_url(url: str) -> str:
    """``https://u:p@host`` -> ``https://u:***@host``; URLs without credentials are returned as they are."""
    return _mask(url) if "@" in url else url


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``https://u:p@host:9200`` -> (``https://host:9200``, ``u``, ``p``), percent-decoded (write a
    ``#`` in a password as ``%23``, ``/`` as ``%2F``, ``?`` as ``%3F``, ``@`` as ``%40``).

    A URL whose credentials cannot be split unambiguously is refused with a ``ConfigError`` whose
    message shows the password as ``***``."""
    hint = "percent-encode '#', '/', '?' and '@' in the user name and password (%23, %2F, %3F, %40)"
    try:
        parts = urlsplit(url)
        rest = url.split("://", 1)[-1][len(parts.netloc):]
        if "@" in rest and "@" not in parts.netloc:
            # e.g. a raw '#', '/' or '?' in the password: urlsplit ended the host part early
            raise ValueError("credentials")
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"OPENSEARCH_URL cannot be split into host and credentials ({_reason(exc)}): "
                          f"{_mask(url)}; {hint}") from None
    if not parts.username:
        return url, None, None
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if port:
        netloc += f":{port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, unquote(parts.username), unquote(parts.password) if parts.password is not None else None


def _reason(exc: Exception) -> str:
    # urllib's messages can quote the netloc (and so the password): keep only the generic part
    text = str(exc)
    return "credentials end early" if text == "credentials" else ("bad port" if "port" in text.lower() else "unparseable")


def settings_from_connection(
    host: str | None,
    port: int | str | None = None,
    schema: str | None = None,
    login: str | None = None,
    password: str | None = None,
    extra: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """Settings from the fields of an Airflow connection of type ``opensearch`` (the official
    OpenSearch provider's; ``http`` connections work the same way). Pure: no Airflow import.

    - scheme: extra ``scheme``, else ``schema`` when it is ``http``/``https``, else ``https`` when extra
      ``use_ssl`` is true, else ``http``. A ``host`` given as a URL keeps its scheme.
    - extras: ``verify_certs`` (default **true**, unlike the provider's hook), ``ca_certs``, ``timeout``,
      ``max_retries``, ``url_prefix``; booleans may be ``true``/``false``/``"0"``/``"no"``...
    - the rest (index name, image base) comes from ``env`` as in ``Settings.from_env``.
    """
    extra = dict(extra or {})
    if not host:
        raise ConfigError("the OpenSearch connection has no host")
    host = str(host).strip()
    scheme = None
    if "://" in host:
        scheme, host = host.split("://", 1)
        host = host.rstrip("/")
    scheme = str(extra.get("scheme") or scheme or (schema if schema in ("http", "https") else "")
                 or ("https" if parse_bool(extra.get("use_ssl"), name="extra.use_ssl", default=False) else "http"))
    if scheme not in ("http", "https"):
        raise ConfigError(f"the OpenSearch connection's scheme must be http or https, not {scheme!r}")
    if ":" in host and not host.startswith("["):
        host, _, host_port = host.rpartition(":")
        port = port or host_port
    try:
        port_number = int(port) if port not in (None, "") else 9200
    except ValueError:
        raise ConfigError(f"the OpenSearch connection's port must be a number, not {port!r}") from None
    prefix = str(extra.get("url_prefix") or "").strip("/")
    url = f"{scheme}://{host}:{port_number}" + (f"/{prefix}" if prefix else "")
    base = Settings.from_env({k: v for k, v in (env if env is not None else os.environ).items()
                              if not k.startswith("OPENSEARCH_")})
    fields: dict[str, object] = {
        "opensearch_url": url,
        "username": login or None,
        "password": password or None,
        "verify_certs": parse_bool(extra.get("verify_certs"), name="extra.verify_certs", default=True),
        "ca_certs": extra.get("ca_certs") or None,
    }
    if extra.get("timeout") not in (None, ""):
        fields["timeout"] = float(extra["timeout"])
    if extra.get("max_retries") not in (None, ""):
        fields["max_retries"] = int(extra["max_retries"])
    return replace(base, **fields, **overrides)  # type: ignore[arg-type]


def make_client(settings: Settings, **kwargs: object):
    """An ``opensearchpy.OpenSearch`` client for ``settings`` (import is local: heavy, and not needed
    by the pure stages)."""
    from opensearchpy import OpenSearch

    auth = (settings.username, settings.password or "") if settings.username else None
    if settings.ca_certs:
        kwargs.setdefault("ca_certs", settings.ca_certs)
    return OpenSearch(
        hosts=[settings.opensearch_url],
        http_auth=auth,
        verify_certs=settings.verify_certs,
        ssl_show_warn=settings.verify_certs,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        retry_on_timeout=True,
        **kwargs,
    )
