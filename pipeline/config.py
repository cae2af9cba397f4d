"""Settings, read once at the edge (CLI or DAG task) and passed down; clients are built here.

(Just over 400 lines on purpose: every setting, with its environment variable, its Airflow connection
field, its parser and its exact error message, is read in this one module, so the CLI and the DAG
cannot read a setting two ways.)

Secrets (the OpenSearch password) come from the environment or an Airflow connection, never from code,
and ``Settings.__repr__`` never shows them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.errors import ConfigError

DEFAULT_OPENSEARCH_URL = "http://127.0.0.1:9200"
DEFAULT_INDEX_BASE = "seednews-articles"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETENTION = 2  # old article indices kept after a full rebuild swaps the alias
DEFAULT_MAX_RETRIES = 3  # client-side retries of one request (connection errors, timeouts, 502/503/504), next node
DEFAULT_DEAD_TIMEOUT = 30.0  # a node that failed is skipped this long (doubling per failure in a row, at most 16x)
DEFAULT_HEALTH_STATUS: Literal["yellow"] = "yellow"  # the run's indices before it writes: every primary active
DEFAULT_HEALTH_TIMEOUT = 120.0  # seconds to wait for it (a replica is promoted in seconds; a node restart is ~1-2 min)
DEFAULT_READ_RETRY_DEADLINE = 60.0  # seconds a read retries transient errors (pipeline.stores.retry), then fails
# Index names, by OpenSearch's rules (MetadataCreateIndexService): lowercase, none of these characters, not
# starting with '-', '_' or '+', not '.' or '..', at most 255 bytes. The base also names "<base>-ledger-v<stamp>"
# (29 bytes more), which must fit too. INDEX_NAME_PATTERN is the same rule as a regex (the DAG's "index" Param
# carries a copy: the DAG file imports nothing from pipeline at parse time; tests/test_cli.py keeps them equal).
INDEX_NAME_FORBIDDEN = '\\/*?"<>| ,#:'
INDEX_NAME_MAX_BYTES = 255 - len("-ledger-v") - 20
INDEX_NAME_PATTERN = r'^(?![-_+])(?!\.\.?$)[^A-Z\\/*?"<>| ,#:]{1,226}$'
HealthStatus = Literal["yellow", "green"]
HEALTH_STATUSES: tuple[HealthStatus, ...] = get_args(HealthStatus)
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
    dead_timeout: float = DEFAULT_DEAD_TIMEOUT
    sniff: bool = False  # ask the cluster for its nodes (at start, on a connection failure, every minute)
    # replicas of the run's indices: None keeps the templates' auto_expand_replicas "0-1" (0 on one node,
    # 1 on a cluster); a number ("1") pins number_of_replicas; a range ("0-1", "1-all") sets auto-expand
    replicas: str | None = None
    health_status: HealthStatus = DEFAULT_HEALTH_STATUS
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT
    read_retry_deadline: float = DEFAULT_READ_RETRY_DEADLINE  # a read's transient errors: retried this long
    index_base: str = DEFAULT_INDEX_BASE  # the read alias; concrete indices are "<base>-<stamp>"
    retention: int = DEFAULT_RETENTION
    image_relative_base: str | None = None  # site that relative image URLs belong to (None: report "relative")

    def __post_init__(self) -> None:
        check_index_name(self.index_base)  # every way in (CLI, DAG, env, code): before any request

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
    def plan_index(self) -> str:
        """Where the DAG's plan hands its batches' files to the workers (``pipeline.run.handoff``)."""
        return f"{self.index_base}-plan"

    @property
    def image_cache_index(self) -> str:
        return f"{self.index_base}-imagecache"

    @property
    def opensearch_urls(self) -> tuple[str, ...]:
        """Every node the client may talk to (``opensearch_url`` is comma-separated for a cluster)."""
        return tuple(u.strip() for u in self.opensearch_url.split(",") if u.strip())

    @property
    def display_url(self) -> str:
        """The URL(s) as they may be printed: never with credentials."""
        return ",".join(redact_url(u) for u in self.opensearch_urls)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """``OPENSEARCH_URL`` (one URL, or a comma-separated list of the cluster's nodes; may carry
        ``user:password@``), ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``, ``OPENSEARCH_VERIFY_CERTS``
        (``false`` to disable), ``OPENSEARCH_CA_CERTS`` (a PEM bundle), ``OPENSEARCH_TIMEOUT`` (seconds per
        request), ``OPENSEARCH_MAX_RETRIES``, ``OPENSEARCH_DEAD_TIMEOUT`` (seconds), ``OPENSEARCH_SNIFF``,
        ``SEEDNEWS_REPLICAS``, ``SEEDNEWS_HEALTH_STATUS`` (``yellow``/``green``), ``SEEDNEWS_HEALTH_TIMEOUT``
        (seconds), ``SEEDNEWS_READ_RETRY_DEADLINE`` (seconds), ``SEEDNEWS_INDEX``, ``SEEDNEWS_IMAGE_BASE``
        (the site relative image URLs such as ``/assets/...`` belong to)."""
        env = dict(os.environ if env is None else env)
        urls, user, password = split_hosts(env.get("OPENSEARCH_URL") or DEFAULT_OPENSEARCH_URL)
        settings = cls(
            opensearch_url=",".join(urls),
            username=env.get("OPENSEARCH_USER") or user,
            password=env.get("OPENSEARCH_PASSWORD") or password,
            verify_certs=parse_bool(env.get("OPENSEARCH_VERIFY_CERTS"), name="OPENSEARCH_VERIFY_CERTS", default=True),
            ca_certs=env.get("OPENSEARCH_CA_CERTS") or None,
            timeout=_number(env, "OPENSEARCH_TIMEOUT", DEFAULT_TIMEOUT),
            max_retries=int(_number(env, "OPENSEARCH_MAX_RETRIES", DEFAULT_MAX_RETRIES, integer=True)),
            dead_timeout=_number(env, "OPENSEARCH_DEAD_TIMEOUT", DEFAULT_DEAD_TIMEOUT),
            sniff=parse_bool(env.get("OPENSEARCH_SNIFF"), name="OPENSEARCH_SNIFF", default=False),
            replicas=parse_replicas(env.get("SEEDNEWS_REPLICAS")),
            health_status=parse_health_status(env.get("SEEDNEWS_HEALTH_STATUS")),
            health_timeout=_number(env, "SEEDNEWS_HEALTH_TIMEOUT", DEFAULT_HEALTH_TIMEOUT),
            read_retry_deadline=_number(env, "SEEDNEWS_READ_RETRY_DEADLINE", DEFAULT_READ_RETRY_DEADLINE),
            index_base=check_index_name(env.get("SEEDNEWS_INDEX") or DEFAULT_INDEX_BASE, "SEEDNEWS_INDEX"),
            image_relative_base=env.get("SEEDNEWS_IMAGE_BASE") or None,
        )
        return replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> float:
    """A non-negative number from ``env[name]`` (unset or empty: ``default``); a clear error otherwise."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name}: {raw!r} is not {kind}") from None
    if value < 0 or value != value:
        raise ConfigError(f"{name}: {raw!r} must not be negative")
    return value


def parse_replicas(value: object) -> str | None:
    """``SEEDNEWS_REPLICAS``: unset/empty/``auto`` -> None (the templates' ``auto_expand_replicas: 0-1``); a
    whole number -> that ``number_of_replicas``; ``<min>-<max|all>`` -> that auto-expand range."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if re.fullmatch(r"[0-9]{1,2}", text) or re.fullmatch(r"[0-9]{1,2}-([0-9]{1,2}|all)", text):
        lo, _, hi = text.partition("-")
        if hi and hi != "all" and int(hi) < int(lo):
            raise ConfigError(f"SEEDNEWS_REPLICAS: {value!r}: the range ends below its start")
        return text
    raise ConfigError(
        f"SEEDNEWS_REPLICAS: {value!r} is not a replica count (e.g. 1), an auto-expand range "
        "(e.g. 0-1, 1-all) or 'auto'"
    )


def parse_health_status(value: object) -> HealthStatus:
    text = "" if value is None else str(value).strip().lower()
    if not text:
        return DEFAULT_HEALTH_STATUS
    for status in HEALTH_STATUSES:
        if text == status:
            return status
    raise ConfigError(f"SEEDNEWS_HEALTH_STATUS: {value!r} is not one of {', '.join(HEALTH_STATUSES)}")


def check_index_name(name: str, where: str = "index name") -> str:
    """``name`` if OpenSearch accepts it as an index base (see ``INDEX_NAME_PATTERN``), else a
    ``ConfigError`` naming each rule it breaks, so a bad name never reaches the cluster."""
    problems = []
    if name != name.lower():
        problems.append("has uppercase letters")
    if bad := sorted({c for c in name if c in INDEX_NAME_FORBIDDEN}, key=name.index):
        problems.append("contains " + ", ".join(repr(c) for c in bad))
    if name[:1] in ("-", "_", "+"):
        problems.append(f"starts with {name[0]!r}")
    if name in ("", ".", ".."):
        problems.append("is empty" if not name else f"is {name!r}")
    if len(name.encode("utf-8")) > INDEX_NAME_MAX_BYTES:
        problems.append(f"is {len(name.encode('utf-8'))} bytes long (at most {INDEX_NAME_MAX_BYTES})")
    if problems:
        raise ConfigError(
            f"{where} {name!r} is not a valid OpenSearch index name: {'; '.join(problems)} (use lowercase, "
            f"no space or any of {INDEX_NAME_FORBIDDEN.replace(' ', '')}, not starting with - _ +)"
        )
    return name


def split_hosts(value: str, name: str = "OPENSEARCH_URL") -> tuple[tuple[str, ...], str | None, str | None]:
    """``OPENSEARCH_URL`` -> (node URLs without credentials, user, password). A cluster is a
    comma-separated list (``https://n1:9200,https://n2:9200``); one client knows every node, so a lost
    node is skipped instead of failing the run. Each entry is split like :func:`split_credentials`
    (write a ``,`` in a user name or password as ``%2C``); an entry without a scheme gets ``http://``
    (as the client did before). Refused with a ``ConfigError`` that never shows a password: an empty
    entry, a scheme other than http/https, no host, mixed schemes, the same node twice, and different
    credentials on different entries (one client sends one set)."""
    raw = [part.strip() for part in str(value).split(",")]
    if len(raw) == 1:
        return _split_host(raw[0], name, show=True)
    # With credentials in a list, a raw ',' in a password splits it into pieces that look like entries:
    # then no entry is shown at all, only its number and what is wrong.
    show = "@" not in str(value)
    hint = "" if show else " (entries not shown: the value carries credentials; write ',' in them as %2C)"
    if not all(raw):
        shown = f": {value!r}" if show else hint
        raise ConfigError(f"{name} has an empty entry{shown}; separate node URLs with single commas")
    urls: list[str] = []
    creds: set[tuple[str | None, str | None]] = set()
    for number, entry in enumerate(raw, 1):
        where = f"{name} entry {number} of {len(raw)}"
        if not show and "://" not in entry:
            raise ConfigError(f"{where} has no scheme (http:// or https://){hint}")
        try:
            (url,), user, password = _split_host(entry, where, show=show)
        except ConfigError as exc:
            raise ConfigError(str(exc) + hint) from None
        if url in urls:
            raise ConfigError(f"{where} repeats an earlier node: {url}")
        urls.append(url)
        if user is not None:
            creds.add((user, password))
    schemes = {urlsplit(u).scheme for u in urls}
    if len(schemes) > 1:
        raise ConfigError(f"{name} mixes http and https: {', '.join(urls)}; a cluster speaks one of them")
    if len(creds) > 1:
        raise ConfigError(
            f"{name} carries different credentials on different nodes (not shown); "
            "one client sends one set: put it in OPENSEARCH_USER / OPENSEARCH_PASSWORD"
        )
    user, password = next(iter(creds)) if creds else (None, None)
    return tuple(urls), user, password


def _split_host(entry: str, where: str, *, show: bool) -> tuple[tuple[str], str | None, str | None]:
    if "://" not in entry and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", entry):
        # "htp:/x", "http:/host": a mistyped scheme, not a host name to put http:// in front of
        shown = f": {redact_url(entry)}" if show else ""
        raise ConfigError(f"{where} is not a URL (write http://host:port or https://host:port){shown}")
    if "://" not in entry:
        entry = f"http://{entry}"
    if show:
        url, user, password = split_credentials(entry)
    else:
        try:
            url, user, password = split_credentials(entry)
        except ConfigError:
            raise ConfigError(
                f"{where} cannot be split into host and credentials; percent-encode '#', '/', "
                "'?', '@' and ',' in the user name and password (%23, %2F, %3F, %40, %2C)"
            ) from None
    parts = urlsplit(url)
    shown = f": {redact_url(entry)}" if show else ""
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{where}: the scheme must be http or https, not {parts.scheme!r}{shown}")
    if not parts.hostname:
        raise ConfigError(f"{where} has no host{shown}")
    if not _valid_host(parts.hostname):
        raise ConfigError(f"{where}: {parts.hostname!r} is not a valid host name or IP address{shown}")
    return (url,), user, password


def _valid_host(host: str) -> bool:
    """A DNS name (letters, digits, '-', '_' in dot-separated labels) or an IP address."""
    if ":" in host:  # an IPv6 literal ([::1] in the URL)
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    label = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    return len(host) <= 253 and re.fullmatch(rf"{label}(?:\.{label})*\.?", host) is not None


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
        rest = url.split("://", 1)[-1][len(parts.netloc) :]
        if "@" in rest and "@" not in parts.netloc:
            # e.g. a raw '#', '/' or '?' in the password: urlsplit ended the host part early
            raise ValueError("credentials")
        port = parts.port
    except ValueError as exc:
        if "@" not in url and _reason(exc) == "bad port":
            raise ConfigError(f"OPENSEARCH_URL: the port must be a number from 0 to 65535: {url}") from None
        raise ConfigError(
            f"OPENSEARCH_URL cannot be split into host and credentials ({_reason(exc)}): {_mask(url)}; {hint}"
        ) from None
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
    return (
        "credentials end early" if text == "credentials" else ("bad port" if "port" in text.lower() else "unparseable")
    )


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
    - a cluster: ``host`` may list several nodes, comma-separated (``n1,n2:9201,https://n3``); a node
      without its own port uses ``port``.
    - extras: ``verify_certs`` (default **true**, unlike the provider's hook), ``ca_certs``, ``timeout``,
      ``max_retries``, ``dead_timeout``, ``sniff``, ``url_prefix``; booleans may be ``true``/``false``/``"0"``/
      ``"no"``...
    - the rest (index name, image base) comes from ``env`` as in ``Settings.from_env``.
    """
    extra = dict(extra or {})
    if not host or not str(host).strip(" ,"):
        raise ConfigError("the OpenSearch connection has no host")
    entries = [h.strip() for h in str(host).split(",")]
    if not all(entries):
        raise ConfigError(f"the OpenSearch connection's host list has an empty entry: {host!r}")
    prefix = str(extra.get("url_prefix") or "").strip("/")
    urls = []
    for entry in entries:
        scheme = None
        if "://" in entry:
            scheme, entry = entry.split("://", 1)
            entry = entry.rstrip("/")
        scheme = str(
            extra.get("scheme")
            or scheme
            or (schema if schema in ("http", "https") else "")
            or ("https" if parse_bool(extra.get("use_ssl"), name="extra.use_ssl", default=False) else "http")
        )
        if scheme not in ("http", "https"):
            raise ConfigError(f"the OpenSearch connection's scheme must be http or https, not {scheme!r}")
        entry_port = port
        if ":" in entry and not entry.startswith("["):
            entry, _, host_port = entry.rpartition(":")
            # one host: the connection's port wins (as it always did); a list: each node's own port does
            entry_port = (host_port or port) if len(entries) > 1 else (port or host_port)
        try:
            port_number = int(entry_port) if entry_port not in (None, "") else 9200
        except ValueError:
            raise ConfigError(f"the OpenSearch connection's port must be a number, not {entry_port!r}") from None
        urls.append(f"{scheme}://{entry}:{port_number}" + (f"/{prefix}" if prefix else ""))
    url = ",".join(split_hosts(",".join(urls), "the OpenSearch connection's hosts")[0])  # the checks of OPENSEARCH_URL
    base = Settings.from_env(
        {k: v for k, v in (env if env is not None else os.environ).items() if not k.startswith("OPENSEARCH_")}
    )
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
    if extra.get("dead_timeout") not in (None, ""):
        fields["dead_timeout"] = float(extra["dead_timeout"])
    if extra.get("sniff") not in (None, ""):
        fields["sniff"] = parse_bool(extra.get("sniff"), name="extra.sniff")
    return replace(base, **fields, **overrides)  # type: ignore[arg-type]
