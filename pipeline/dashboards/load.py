"""Import the seednews saved objects into OpenSearch Dashboards: ``python -m pipeline dashboards import``.

One request, idempotent (stable ids + ``overwrite=true``)::

    POST {url}/api/saved_objects/_import?overwrite=true
    osd-xsrf: true
    securitytenant: global              (the tenant the objects land in; see DASHBOARDS_TENANT)
    Content-Type: multipart/form-data   (field "file" = dashboards/seednews.ndjson)

Settings come from the command line and the environment, read once at the edge:

``--url`` / ``DASHBOARDS_URL``             default ``http://127.0.0.1:5601`` (may carry a base path)
``DASHBOARDS_USER`` / ``DASHBOARDS_PASSWORD`` basic auth, only when set; never printed
``DASHBOARDS_VERIFY_CERTS``                ``true`` (default) / ``false``; anything else is an error
``--ca-certs`` / ``DASHBOARDS_CA_CERTS``   a CA bundle (PEM file, or a directory of hashed certificates) to
                                           verify an https Dashboards with (as ``OPENSEARCH_CA_CERTS`` is for
                                           the cluster); unset: ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``
                                           (read here: the session ignores the environment, proxies and
                                           ``~/.netrc`` included), else ``certifi``'s bundle
``DASHBOARDS_TIMEOUT``                     seconds per socket operation (default 30)
``--tenant`` / ``DASHBOARDS_TENANT``       the security plugin's tenant to import into (default ``global``,
                                           the Global tenant every user sees; ``__user__`` is the importing
                                           user's Private tenant, any other value a custom tenant's name).
                                           Sent as the ``securitytenant`` header on every request: without
                                           it, multitenancy puts the objects in the importing user's Private
                                           tenant, where analysts cannot see them. Dashboards without the
                                           security plugin ignores the header.

:func:`build_import_request` is pure (no I/O); :func:`send_import` takes an injectable
``requests``-compatible session, so tests can swap the transport; :func:`parse_import_response` turns
Dashboards' answer (``success``, ``successCount``, ``errors``) into an :class:`ImportResult` whose
``message`` names each failing object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import ConfigError, split_credentials
from pipeline.config import parse_bool as config_parse_bool
from pipeline.dashboards.objects import shipped_ndjson
from pipeline.errors import DashboardsError

NDJSON_PATH = shipped_ndjson()
CA_BUNDLE_VARIABLES = ("DASHBOARDS_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Where a CA bundle is looked for, first set wins (``--ca-certs`` before all)."""

DEFAULT_URL = "http://127.0.0.1:5601"
DEFAULT_TIMEOUT = 30.0
DEFAULT_TENANT = "global"
"""The security plugin's Global tenant: objects there are shared by every user."""
TENANT_HEADER = "securitytenant"
IMPORT_PATH = "/api/saved_objects/_import"


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case, the words ``config.parse_bool``
    knows); unset or blank -> ``default``."""
    if value is None or not value.strip():
        return default
    try:
        return config_parse_bool(value, name=name)
    except ConfigError:
        raise DashboardsError(f"{name} must be true or false, not {value!r}") from None


@dataclass(frozen=True)
class DashboardsConfig:
    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    timeout: float = DEFAULT_TIMEOUT
    ca_certs: str | None = None  # CA bundle to verify Dashboards' certificate with (https only)
    tenant: str = DEFAULT_TENANT  # the security plugin's tenant the objects are imported into

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        url: str | None = None,
        ca_certs: str | None = None,
        tenant: str | None = None,
    ) -> DashboardsConfig:
        env = os.environ if env is None else env
        raw_url = (url or env.get("DASHBOARDS_URL") or DEFAULT_URL).strip()
        clean_url, url_user, url_password = split_credentials(raw_url)
        if not clean_url.lower().startswith(("http://", "https://")):
            raise DashboardsError(f"Dashboards URL must start with http:// or https://: {clean_url!r}")
        timeout_raw = env.get("DASHBOARDS_TIMEOUT") or str(DEFAULT_TIMEOUT)
        try:
            timeout = float(timeout_raw)
        except ValueError:
            raise DashboardsError(f"DASHBOARDS_TIMEOUT must be a number of seconds, not {timeout_raw!r}") from None
        if not timeout > 0:
            raise DashboardsError("DASHBOARDS_TIMEOUT must be > 0")
        verify = parse_bool("DASHBOARDS_VERIFY_CERTS", env.get("DASHBOARDS_VERIFY_CERTS"), True)
        ca = _ca_bundle(env, ca_certs) if verify and clean_url.lower().startswith("https://") else None
        return cls(
            url=clean_url.rstrip("/"),
            username=env.get("DASHBOARDS_USER") or url_user,
            password=env.get("DASHBOARDS_PASSWORD") or url_password,
            verify_certs=verify,
            timeout=timeout,
            ca_certs=ca,
            tenant=_tenant(env, tenant),
        )


def _tenant(env: Mapping[str, str], given: str | None) -> str:
    """The tenant from ``--tenant``, else ``DASHBOARDS_TENANT``, else :data:`DEFAULT_TENANT` (blank counts
    as unset). A header value cannot carry control characters, so those are refused here."""
    name, value = ("--tenant", given) if given is not None else ("DASHBOARDS_TENANT", env.get("DASHBOARDS_TENANT"))
    value = (value or "").strip()
    if not value:
        return DEFAULT_TENANT
    if not value.isprintable() or not value.isascii():
        raise DashboardsError(f"{name} must be printable ASCII (a tenant name, global or __user__): {value!r}")
    return value


def _ca_bundle(env: Mapping[str, str], given: str | None) -> str | None:
    """The CA bundle named by ``--ca-certs`` or the first of :data:`CA_BUNDLE_VARIABLES` set; it must
    exist (``requests`` would otherwise fail at the first request with an ``OSError``)."""
    name, path = (
        ("--ca-certs", given)
        if given
        else next(((n, env[n]) for n in CA_BUNDLE_VARIABLES if env.get(n, "").strip()), ("", None))
    )
    if path is None:
        return None
    path = path.strip()
    if not os.path.exists(path):
        raise DashboardsError(f"{name} names no CA bundle file or directory: {path!r}")
    return path


@dataclass(frozen=True)
class ImportRequest:
    """Everything ``requests`` needs for the import call (auth kept out of ``repr``)."""

    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    files: dict[str, tuple[str, bytes, str]]
    verify: bool | str  # requests' ``verify``: a CA bundle's path, or whether to verify with certifi's
    timeout: float
    auth: tuple[str, str] | None = field(default=None, repr=False)


def build_import_request(config: DashboardsConfig, ndjson: bytes, filename: str = "seednews.ndjson") -> ImportRequest:
    """The import request for ``ndjson`` (pure). Dashboards refuses a file whose name does not end in
    ``.ndjson``, so that is checked here rather than discovered from a 415."""
    if not filename.endswith(".ndjson"):
        raise DashboardsError(f"the saved objects file must be named *.ndjson (Dashboards refuses others): {filename}")
    return ImportRequest(
        method="POST",
        url=config.url + IMPORT_PATH,
        params={"overwrite": "true"},
        headers={"osd-xsrf": "true", "Accept": "application/json", TENANT_HEADER: config.tenant},
        files={"file": (filename, ndjson, "application/ndjson")},
        verify=config.ca_certs if config.verify_certs and config.ca_certs else config.verify_certs,
        timeout=config.timeout,
        auth=(config.username, config.password or "") if config.username else None,
    )


@dataclass(frozen=True)
class ImportResult:
    ok: bool
    success_count: int
    errors: list[str]  # one readable line per saved object Dashboards refused
    message: str
    status: int = 200  # HTTP status of the answer


def _describe_error(err: Mapping[str, Any]) -> str:
    meta: Mapping[str, Any] = err["meta"] if isinstance(err.get("meta"), Mapping) else {}
    title = meta.get("title") or err.get("title")
    what = f"{err.get('type', '?')} {err.get('id', '?')}" + (f" ({title!r})" if title else "")
    detail: Mapping[str, Any] = err["error"] if isinstance(err.get("error"), Mapping) else {}
    kind = detail.get("type", "unknown")
    if kind == "missing_references":
        refs = ", ".join(f"{r.get('type')} {r.get('id')}" for r in detail.get("references") or [])
        return f"{what}: missing references: {refs}"
    if kind == "unknown":
        status = detail.get("statusCode")
        return f"{what}: {detail.get('message', 'unknown error')}" + (f" (HTTP {status})" if status else "")
    return f"{what}: {kind}"


def parse_import_response(status: int, body: bytes | str) -> ImportResult:
    """Dashboards' answer -> :class:`ImportResult`. HTTP 200 with ``success: true`` is the only success."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        snippet = " ".join(text.split())[:300]
        return ImportResult(False, 0, [], f"import failed: HTTP {status}, not a JSON answer: {snippet!r}", status)
    if status != 200:
        reason = data.get("message") or data.get("error") or "no message"
        return ImportResult(False, 0, [], f"import failed: HTTP {status}: {reason}", status)
    count: int = data["successCount"] if isinstance(data.get("successCount"), int) else 0
    errors = [_describe_error(e) for e in data.get("errors") or [] if isinstance(e, Mapping)]
    if data.get("success") is True and not errors:
        return ImportResult(True, count, [], f"imported {count} saved objects")
    lines = [f"import failed: {len(errors)} saved object(s) not imported ({count} imported):"]
    lines += [f"  - {e}" for e in errors] or ["  - Dashboards answered success=false without naming an object"]
    return ImportResult(False, count, errors, "\n".join(lines))


def send_import(request: ImportRequest, session=None) -> ImportResult:
    """Send ``request`` with ``session`` (a ``requests.Session`` or anything with its ``request``
    method; default: a fresh one that ignores proxy settings from the environment)."""
    import requests

    own = session is None
    if own:
        session = requests.Session()
        session.trust_env = False  # no HTTP(S)_PROXY detours, no ~/.netrc credentials
    try:
        response = session.request(
            request.method,
            request.url,
            params=request.params,
            headers=request.headers,
            files=request.files,
            auth=request.auth,
            verify=request.verify,
            timeout=request.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise DashboardsError(
            f"cannot reach OpenSearch Dashboards at {request.url}: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    finally:
        if own:
            session.close()
    return parse_import_response(response.status_code, response.content)


def import_file(config: DashboardsConfig, path: Path | str = NDJSON_PATH, session=None) -> ImportResult:
    path = Path(path)
    try:
        ndjson = path.read_bytes()
    except OSError as exc:
        raise DashboardsError(f"cannot read saved objects file {path}: {exc.strerror}") from None
    return send_import(build_import_request(config, ndjson, path.name), session=session)


# ------------------------------------------------------------------ command line (wired in cli.py)
def add_subparser(sub) -> None:
    d = sub.add_parser("dashboards", help="OpenSearch Dashboards saved objects (index patterns, dashboards)")
    d.add_argument("action", choices=["import"], help="import dashboards/seednews.ndjson (overwrites by id)")
    d.add_argument("--url", help=f"Dashboards base URL (default: DASHBOARDS_URL or {DEFAULT_URL})")
    d.add_argument("--file", type=Path, default=NDJSON_PATH, help="saved objects NDJSON (default: %(default)s)")
    d.add_argument(
        "--ca-certs",
        help="CA bundle (PEM) to verify an https Dashboards with (default: DASHBOARDS_CA_CERTS, "
        "REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's bundle)",
    )
    d.add_argument(
        "--tenant",
        help=f"security plugin tenant to import into (default: DASHBOARDS_TENANT or {DEFAULT_TENANT}, the Global "
        "tenant; __user__ is your Private tenant)",
    )
    d.set_defaults(func=cmd_dashboards)


def cmd_dashboards(args: argparse.Namespace, session=None) -> int:
    """0 all imported; 1 Dashboards refused some objects (named on stderr); 2 usage, unreachable or an
    HTTP error answer (401, 5xx...)."""
    try:
        config = DashboardsConfig.from_env(
            url=args.url, ca_certs=getattr(args, "ca_certs", None), tenant=getattr(args, "tenant", None)
        )
        print(f"OpenSearch Dashboards: {config.url}  tenant: {config.tenant}  file: {args.file}")
        result = import_file(config, args.file, session=session)
    except DashboardsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.ok:
        print(result.message)
        return 0
    print(result.message, file=sys.stderr)
    return 1 if result.status == 200 else 2
