"""Seeds in object storage: ``s3://bucket/prefix`` (AWS S3 or any S3-compatible server).

(Over 400 lines on purpose: key safety, the change filter and the bounded reads are one contract with
the ledger, and the rules below are checked against each other.)

**Identity.** The location ``s3://bucket/prefix`` is a folder: its prefix always ends with ``/``, so
``s3://b/seeds/2026`` reads ``seeds/2026/...`` and never ``seeds/2026-old/...``; ``s3://b`` reads the
whole bucket. ``SeedFile.root`` is ``s3://<bucket>/<prefix>`` (with the trailing ``/``) and
``SeedFile.rel`` the rest of the object key, so ``root + rel`` is exactly ``s3://<bucket>/<object key>``
and the ledger id (``types.entry_key(root, rel)``, a hash of the UTF-8 bytes of both) is bucket + object
key. Keys are compared byte for byte, as S3 does: two keys that differ only in Unicode normalisation
(``café`` as NFC and as NFD) are two objects with two ledger entries and an outcome each.

**Change filter.** An object has no inode or ctime; its stat fingerprint in the ledger is
``(size, LastModified in whole seconds, 0, fingerprint of the ETag)``: the ETag (quotes stripped) is
hashed into the 63-bit ``ino`` field, so the ledger's shape and ``LedgerEntry.same_stat`` are the same
for files and objects. Same size and ETag and LastModified: ``unchanged``, not downloaded. Anything
else is downloaded once in the run, by the worker (``deferred_hash``), which computes the sha256 from
the bytes it reads: planning downloads (``hash``) only an object whose content may be one the ledger
knows under another ETag, where the sha256 must decide before the work is split
(``pipeline.run.plan.must_hash``: a re-upload of the same bytes is still ``unchanged``; a copy to a
new key is a move). LastModified is cut to seconds because listings give milliseconds and GET/HEAD an
HTTP date.

**Safety.**

- The size limit is checked against the listed size before any download; the GET asks for at most
  ``max_bytes + 1`` bytes (``Range``), its ``Content-Range``/``Content-Length`` are checked before the
  body is read, and the body is read in chunks that stop past the limit whatever the server sends.
- Nothing outside the prefix: the listing asks for ``prefix/`` only and every returned key is checked
  to start with it again (a key outside is ignored and logged, never read).
- Every seed-named key gets exactly one outcome (``classify_key``): a key with an empty, ``.`` or
  ``..`` segment (``a//b.txt``, a leading ``/``, ``a/../b.txt``), a control character, an undecodable
  byte (U+FFFD after the listing's URL decoding) or more than 1024 bytes is quarantined with a reason
  naming the key; a key ending in ``/`` that holds bytes (a "folder" with content) is quarantined; an
  empty ``a/`` is a folder marker and ignored; a zero-byte seed is read and quarantined by the parser
  like an empty file; a seed inside a hidden "folder" (``.git/x.txt``) is skipped as in a folder walk.
- Between planning and the worker's read the object may change: planning keeps what it saw (the
  listing's ETag and size, or those of the bytes it downloaded and their hash), and the worker's GET
  must answer with the planned ETag (checked from the response headers, before the body is read) and,
  when planning hashed it, the same sha256, else the outcome is ``changed`` and the next run takes the
  new content. A deleted object is gone from the listing: the same deletion semantics and vanish guard
  as deleted files.

**Errors.** Per-object answers become outcomes (404: ``changed``; 403 and other 4xx: quarantined with
the error code). Connection failures and 5xx that outlast botocore's retries raise: an unreachable
store must fail the task (Airflow retries it), never look like an empty or shrunken prefix. A listing
that fails half-way raises too, so a partial listing can never delete anything.

**The GET and the listing.** Each read is first a request signed by botocore's own SigV4 signer for the
URL ``get_object`` would ask for (``GetSigner``, learnt once per bucket), sent on the client's own HTTP
session (``lean_get``: the same connection pools, proxies and TLS settings, without botocore's per-request
pipeline); a client that does not sign ``get_object`` with SigV4 sends a presigned URL instead. Whatever
that cannot answer with a 200, 206 or 404 is asked again through ``get_object``, so errors, retries and
their messages are botocore's. Listing pages are presigned URLs, parsed with ElementTree
(``list_pages``), until one is not a readable listing: that page and the rest go through
``list_objects_v2``.

**Credentials.** ``make_client`` builds a boto3 client with explicit timeouts and retries. From the
CLI the credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles); the endpoint from ``SEEDNEWS_S3_ENDPOINT``,
else ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` (boto3's own), else AWS; the region from
``AWS_REGION``/``AWS_DEFAULT_REGION`` (default ``us-east-1``). A custom endpoint uses path-style
addressing (``SEEDNEWS_S3_ADDRESSING=virtual`` to change it). Credentials are never logged; only the
endpoint (without any user info) is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pipeline.sources.folder import (
    DEFAULT_PATTERNS,
    SeedRootError,
    human_size,
    is_seed_name,
)
from pipeline.types import SeedFile, SeedOutcome, quarantine

log = logging.getLogger("seednews.s3")

SCHEME = "s3://"
MAX_KEY_BYTES = 1024  # S3's own limit on a key; a longer one cannot be a real object
READ_CHUNK = 1 << 16
BODY_ATTEMPTS = 3  # a body that breaks off mid-read is fetched again this many times, then the error is raised
LIST_PAGE = 1000
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 5  # botocore "standard" retry mode: connection errors, throttling, 5xx
MAX_POOL_CONNECTIONS = 32  # connections a client keeps open: room for the run's concurrent GETs (Tuning.read_threads)
PRESIGN_SECONDS = 300  # a presigned GET is sent at once; its lifetime only bounds a URL that leaked somewhere
LEAN_GIVE_UP = 8  # presigned GETs refused in a row (a gateway or region that wants get_object): stop trying them
DEFAULT_REGION = "us-east-1"
# S3 bucket naming rules (lowercase letters, digits, dots and hyphens, 3-63 characters)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# ----------------------------------------------------------------------------- locations and keys
@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" (the whole bucket) or ending with "/"

    @property
    def root(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"

    def key(self, rel: str) -> str:
        return self.prefix + rel


def _bad_char(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cs") or c == "\ufffd"


def _has_bad_char(text: str) -> bool:
    """Whether ``text`` has a character ``show_key`` escapes. Printable ASCII (nearly every key) is
    answered at once: the only ASCII characters it escapes are the controls, which are not printable."""
    if text.isascii():
        return not text.isprintable()
    return any(_bad_char(c) for c in text)


def show_key(key: str) -> str:
    """A key as people, JSON and logs can take it: control characters, lone surrogates and U+FFFD
    (bytes that were not UTF-8) shown as escapes; everything else as it is."""
    if not _has_bad_char(key):
        return key
    return "".join(c.encode("unicode_escape").decode("ascii") if _bad_char(c) else c for c in key)


def parse_url(url: str) -> S3Location:
    """``s3://bucket[/prefix]`` as a location (the prefix taken as a folder). Raises ``SeedRootError``
    for anything that is not a plain bucket and prefix: the location is the identity of every entry
    under it, so it must be unambiguous."""
    if url[:5].lower() != SCHEME:
        raise SeedRootError(f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url[5:].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise SeedRootError(
            f"{show_key(url)!r}: {show_key(bucket)!r} is not a valid bucket name "
            "(3-63 lowercase letters, digits, '.' or '-')"
        )
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if prefix:
        segments = prefix[:-1].split("/")
        if any(s in ("", ".", "..") for s in segments):
            raise SeedRootError(
                f"{show_key(url)!r}: the prefix has an empty, '.' or '..' segment; write it as "
                "s3://bucket/folder/subfolder"
            )
        if _has_bad_char(prefix):
            raise SeedRootError(f"{show_key(url)!r}: the prefix has a control character or is not valid UTF-8")
        if len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
            raise SeedRootError(f"the prefix of {show_key(url)[:80]!r}… is longer than {MAX_KEY_BYTES} bytes")
    return S3Location(bucket, prefix)


def classify_key(
    prefix: str, key: str, size: int, patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> tuple[str, str | None] | None:
    """What a listed key is to the pipeline:

    ``None``           not a seed: outside the prefix, a folder marker, not seed-named, or in a hidden
                       folder (the same names a folder walk passes over);
    ``(rel, None)``    a seed to take, ``rel`` being the key under the prefix;
    ``(rel, reason)``  a seed-named key refused with ``reason`` (quarantined at stage discover).
    """
    if not key.startswith(prefix):
        return None
    rel = key[len(prefix) :]
    if rel == "" or rel.endswith("/"):
        if size == 0:
            return None  # a folder marker, as consoles create them
        return (
            _safe_rel(rel),
            f"{_named(key)} ends with '/' (looks like a folder) but holds {human_size(size)}; rename it to a seed name",
        )
    segments = rel.split("/")
    if not is_seed_name(segments[-1], patterns):
        return None
    if any(s in ("", ".", "..") for s in segments[:-1]):
        return (
            _safe_rel(rel),
            f"{_named(key)} has an empty, '.' or '..' path segment (a leading '/' or '//' "
            "included); S3 takes it literally, people and file systems would not: rename it",
        )
    if any(s.startswith(".") for s in segments[:-1]):
        return None  # inside a hidden "folder", as a folder walk skips .git/ and friends
    if _has_bad_char(key):
        what = (
            "is not valid UTF-8"
            if any(c == "\ufffd" or unicodedata.category(c) == "Cs" for c in key)
            else "has a control character"
        )
        return (_safe_rel(rel), f"{_named(key)} {what}; rename it")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return (rel, f"{_named(key)[:120]}… is longer than {MAX_KEY_BYTES} bytes, more than S3 allows")
    return (rel, None)


def _named(key: str) -> str:
    """A refused key, as its reason names it (made only for a refusal: most keys are taken)."""
    return f"object key '{show_key(key)}'"


def _safe_rel(rel: str) -> str:
    """A refused key's path as it can be stored (lone surrogates cannot be encoded as UTF-8)."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        return show_key(rel)


def etag_fingerprint(etag: str | None) -> int:
    """The ETag as a non-negative 63-bit number (it fills the ``ino`` slot of the stat fingerprint)."""
    value = (etag or "").strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int.from_bytes(hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()[:8], "big") >> 1


def mtime_ns(when: datetime | None) -> int:
    """LastModified in whole seconds as nanoseconds (never 0: 0 means "no fingerprint" in the ledger)."""
    return int(when.timestamp()) * 1_000_000_000 if when is not None else 1


def parse_timestamp(value: Any) -> datetime:
    """A timestamp of an S3 response: ISO 8601 (a listing's ``LastModified``: 1,000 a page) through
    ``datetime.fromisoformat``, in C, and an HTTP date (``Last-Modified`` of every GET and HEAD) through
    the standard library's ``email.utils``; anything else (epochs, odd forms) through botocore's own
    parser, which runs dateutil's for every value (~40 us each: 40 % of a listing's CPU, 0.2 ms a GET)."""
    when = None
    if isinstance(value, str):
        try:
            if value[:4].isdigit():
                when = datetime.fromisoformat(value)
            elif value.endswith(" GMT"):
                when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
    if when is not None and when.tzinfo is not None:
        return when
    from botocore.utils import parse_timestamp as botocore_parse

    return botocore_parse(value)


def _fast_timestamps(session: Any) -> None:
    """Clients the boto3 ``session`` makes from now on parse timestamps with ``parse_timestamp``: a default
    of the session's response parser factory (botocore's ``set_parser_defaults``, the hook the AWS CLI uses
    for its own timestamp format). Only speed depends on it: without the hook, botocore's parser stays."""
    core = getattr(session, "_session", None)  # the botocore session inside boto3's
    factory = core.get_component("response_parser_factory") if core is not None else None
    if factory is not None and hasattr(factory, "set_parser_defaults"):
        factory.set_parser_defaults(timestamp_parser=parse_timestamp)


# ----------------------------------------------------------------------------- client
def redact_endpoint(url: str | None) -> str:
    if not url:
        return "AWS (default endpoint)"
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def endpoint_from_env(env: Any = None) -> str | None:
    env = os.environ if env is None else env
    return env.get("SEEDNEWS_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def client_config(
    *,
    endpoint_url: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    max_attempts: int = MAX_ATTEMPTS,
    addressing: str | None = None,
):
    """botocore ``Config``: explicit timeouts and retries, path-style addressing for custom endpoints
    (loopback servers and most S3-compatible stores have no per-bucket host names), checksums only where
    the API requires them (S3-compatible servers differ on the newer default ones)."""
    from botocore.config import Config

    addressing = addressing or os.environ.get("SEEDNEWS_S3_ADDRESSING") or ("path" if endpoint_url else "auto")
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        s3={"addressing_style": addressing},
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="seednews",
    )


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    session: Any = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    **config: Any,
):
    """A boto3 S3 client. Without arguments: everything from the environment (see the module doc)."""
    try:
        import boto3
    except ImportError:  # pragma: no cover - depends on the install
        raise SeedRootError("s3:// seed locations need boto3: pip install 'seednews[s3]'") from None
    endpoint_url = endpoint_url or endpoint_from_env()
    session = session or boto3.session.Session()
    region_name = region_name or session.region_name or os.environ.get("AWS_REGION") or DEFAULT_REGION
    kw = {}
    if aws_access_key_id:  # explicit keys (an Airflow connection); otherwise boto3's chain
        kw = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
    log.info("S3 client: endpoint %s, region %s", redact_endpoint(endpoint_url), region_name)
    _fast_timestamps(session)
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region_name,
        config=client_config(endpoint_url=endpoint_url, **config),
        **kw,
    )


# ----------------------------------------------------------------------------- the lean GET
_SIGNED_QUERY = re.compile(r"(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s\"']*", re.IGNORECASE)


class _RedactSignedUrls(logging.Filter):
    """Takes the signature, credential and session token out of the request lines urllib3 logs at DEBUG
    (``"GET /bucket/key?X-Amz-...&X-Amz-Signature=..."``): a presigned URL is a bearer credential for its
    lifetime, and task logs are read by more people than the store's keys are. (botocore logs its own
    signed headers at DEBUG for ``get_object``: that is botocore's, as before.) A record is only made,
    and this filter only runs, where urllib3's DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_SIGNED_QUERY.sub(r"\1<redacted>", a) if isinstance(a, str) else a for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSignedUrls())  # once: this module is imported once


def _sender(client: Any) -> Any:
    """The ``send`` of the HTTP session botocore made for ``client`` (its connection pools, proxies, TLS
    verification, client certificate and timeouts), or ``None`` for a client without one (a stand-in)."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    send = getattr(session, "send", None)
    return send if callable(send) else None


def _presigned(client: Any, operation: str, params: dict[str, Any], headers: dict[str, str], stream: bool) -> Any:
    """``operation`` as a GET of the URL ``client.generate_presigned_url`` makes (botocore's request)."""
    from botocore.awsrequest import AWSRequest

    url = client.generate_presigned_url(operation, Params=params, ExpiresIn=PRESIGN_SECONDS)
    return AWSRequest(method="GET", url=url, headers=headers, stream_output=stream).prepare()


def _send_signed(send: Any, request: Callable[[], Any]) -> Any:
    """The request ``request()`` builds and signs, sent with ``send`` (``_sender``): botocore's
    response, or ``None`` if it could not be signed or sent (the caller asks botocore's own call then)."""
    from botocore.exceptions import BotoCoreError

    try:
        return send(request())
    except (BotoCoreError, OSError, ValueError):
        return None


class _Probed(Exception):
    """``GetSigner.learn``'s probe request, stopped before it is sent."""


class GetSigner:
    """GetObject requests for the keys of one bucket, each signed by botocore's own S3 SigV4 signer
    (``botocore.auth.S3SigV4Auth``: the ``Authorization`` header, as botocore signs ``get_object``, with
    the client's credentials, refreshed as botocore refreshes them).

    Why not a URL from ``client.generate_presigned_url`` for every object: that resolves the endpoint
    rules, serializes the request and emits botocore's events again for each URL (~0.28 ms of CPU here
    against ~0.11 for a signature alone), and urllib3 then walks the ~450-character signed URL byte by
    byte twice (~0.1 ms); at one GET per object each is about a tenth of the CLI's CPU on S3
    (docs/benchmarks.md). What depends only on the client and the bucket (the URL before the key, the
    signing region and service) is learnt once, from the request ``get_object`` makes for a probe key
    (``learn``).
    Keys are quoted as botocore quotes them (``percent_encode(key, safe="/~")``, the same as
    ``urllib.parse.quote``): ``tests/test_s3_lean_get.py`` compares the URLs for generated keys. A key
    quoted differently could only be refused (403), and a refusal goes to ``get_object``."""

    PROBE_KEY = "seednews-signer-probe"

    def __init__(self, prefix: str, credentials: Any, region: str, service: str) -> None:
        self.prefix = prefix  # everything before the quoted key: scheme, host, and the bucket if path-style
        self.credentials = credentials
        self.region = region
        self.service = service

    @classmethod
    def learn(cls, client: Any, bucket: str) -> GetSigner | None:
        """The signer for ``bucket``, learnt from the request botocore's own ``get_object`` makes for a
        probe key, caught before it is sent (nothing goes on the wire); ``None`` where that request is not
        signed with SigV4 in its headers (unsigned clients, other signature versions) or cannot be made:
        those GET a ``generate_presigned_url`` URL."""
        from botocore.exceptions import BotoCoreError, ClientError

        credentials: Any = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is None or not callable(getattr(credentials, "get_frozen_credentials", None)):
            return None
        caught: list[Any] = []
        probe = f"{cls.PROBE_KEY}-{os.urandom(8).hex()}"  # no real key, and no other learn's probe

        def catch(request: Any, **_: Any) -> None:
            if urlsplit(request.url).path.endswith("/" + probe):  # only this probe: other threads' GETs pass
                caught.append(request)
                raise _Probed
            return None

        unique = f"seednews-get-signer-{id(catch)}"
        events.register_first("before-send.s3.GetObject", catch, unique_id=unique)
        try:
            client.get_object(Bucket=bucket, Key=probe)
        except _Probed:
            pass
        except (BotoCoreError, ClientError, ValueError):
            return None
        finally:
            events.unregister("before-send.s3.GetObject", unique_id=unique)
        if not caught:
            return None
        parts, auth = urlsplit(caught[0].url), caught[0].headers.get("Authorization") or b""
        auth = auth.decode("latin-1") if isinstance(auth, bytes) else str(auth)
        if not auth.startswith("AWS4-HMAC-SHA256 Credential=") or parts.query or parts.fragment:
            return None
        scope = auth[len("AWS4-HMAC-SHA256 Credential=") :].split(",")[0].rsplit("/", 4)
        access_key = credentials.get_frozen_credentials().access_key
        if len(scope) != 5 or scope[0] != access_key or scope[4] != "aws4_request":
            return None
        if not parts.path.endswith("/" + probe):
            return None
        path = parts.path[: -len(probe)]
        return cls(urlunsplit((parts.scheme, parts.netloc, path, "", "")), credentials, scope[2], scope[3])

    def request(self, key: str, headers: dict[str, str]) -> Any:
        """The signed GET of ``key`` with ``headers`` (a ``Range``), ready for the client's session."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="GET", url=self.prefix + quote(key, safe="/~"), headers=headers, stream_output=True)
        S3SigV4Auth(self.credentials.get_frozen_credentials(), self.service, self.region).add_auth(request)
        return request.prepare()


def lean_get(
    client: Any, bucket: str, key: str, byte_range: str | None, signer: GetSigner | None = None
) -> tuple[int, dict[str, Any]] | None:
    """GetObject sent on the client's own HTTP session without botocore's per-call pipeline:
    ``(status, response)`` for a 200, 206 or 404, the response shaped as ``get_object``'s (``Body``,
    ``ETag``, ``ContentRange``, ``ContentLength``, ``LastModified``); ``None`` for anything else (a 403,
    a 5xx, a connection error), which the caller then asks botocore's ``get_object`` again, with its
    retries and error parsing. ``signer``: ``GetSigner.learn(client, bucket)``, whose requests are
    signed in their headers; without one, the GET is of a ``generate_presigned_url`` URL.

    Why: a ``get_object`` call costs ~1.1 ms of CPU here, most of it botocore's per-request pipeline
    (about ten event hooks, the user-agent string rebuilt, the endpoint rules resolved, the response
    headers parsed into a model), against ~0.5 ms for a ``GetSigner`` request (the same SigV4
    signature) on the same urllib3 session; at one GET per object that is a quarter of the CLI's CPU on
    S3 (docs/benchmarks.md). The signature is in no error and no warning: a failure here is not
    reported, the ``get_object`` that follows it reports its own; urllib3's DEBUG request lines carry a
    presigned URL with its signature and credential redacted (``_RedactSignedUrls``)."""
    send = _sender(client)
    if send is None:
        return None
    from botocore.response import StreamingBody

    headers = {"Range": byte_range} if byte_range else {}
    if signer is not None:
        request = partial(signer.request, key, headers)
    else:
        request = partial(_presigned, client, "get_object", {"Bucket": bucket, "Key": key}, headers, True)
    response = _send_signed(send, request)
    if response is None:
        return None
    raw, status = response.raw, response.status_code
    if status not in (200, 206):
        try:
            raw.drain_conn()  # small XML error: read it so the connection goes back to the pool
            raw.release_conn()
        except Exception:  # noqa: BLE001 - a broken connection is simply dropped
            raw.close()
        return (404, {}) if status == 404 else None
    h = response.headers
    length, modified = h.get("Content-Length"), h.get("Last-Modified")
    size = int(length) if length and length.isdigit() else None
    try:
        when = parse_timestamp(modified) if modified else None
    except (ValueError, TypeError, OverflowError):  # a date botocore cannot read either: its get_object decides
        raw.close()
        return None
    return status, {
        "Body": StreamingBody(raw, size),
        "ETag": h.get("ETag"),
        "ContentRange": h.get("Content-Range"),
        "ContentLength": size,
        "LastModified": when,
    }


def _lean_page(client: Any, send: Any, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None] | None:
    """One ListObjectsV2 page as a presigned URL on the client's session, parsed with the standard
    library's ElementTree (expat, as botocore's own parser uses): ``(contents, next token)``, the
    contents shaped as botocore's (``Key`` URL-decoded, ``Size``, ``LastModified``, ``ETag``); ``None``
    for anything but a 200 with a listing in it. A 1,000-key page costs ~8 ms of CPU here against ~20
    through botocore's modelled parser (docs/benchmarks.md)."""
    import xml.etree.ElementTree as ET

    from botocore.compat import unquote_str
    from botocore.exceptions import BotoCoreError

    response = _send_signed(send, partial(_presigned, client, "list_objects_v2", params, {}, False))
    if response is None or response.status_code != 200:
        return None
    try:
        root = ET.fromstring(response.content)
    except (BotoCoreError, OSError, ValueError, ET.ParseError):  # the body broke off, or is not XML
        return None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != f"{ns}ListBucketResult":
        return None
    decode = unquote_str if root.findtext(f"{ns}EncodingType") == "url" else (lambda v: v)
    contents = []
    for obj in root.iterfind(f"{ns}Contents"):
        key, modified = obj.findtext(f"{ns}Key"), obj.findtext(f"{ns}LastModified")
        if key is None:
            return None
        try:
            size = int(obj.findtext(f"{ns}Size") or 0)
            when = parse_timestamp(modified) if modified else None
        except (ValueError, TypeError, OverflowError):  # what botocore's parser would refuse: it decides
            return None
        contents.append({"Key": decode(key), "Size": size, "LastModified": when, "ETag": obj.findtext(f"{ns}ETag")})
    if root.findtext(f"{ns}IsTruncated") != "true":
        return contents, None
    token = root.findtext(f"{ns}NextContinuationToken")
    return (contents, token) if token else None  # truncated without a way on: botocore's answer decides


def list_pages(client: Any, bucket: str, prefix: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
    """The listing of ``prefix``, page by page (each page's ``Contents``): presigned pages (``_lean_page``)
    while they answer, and from the first that does not, botocore's ``list_objects_v2`` for it and every
    page after it, so a listing that fails half-way raises (with botocore's retries and error) and never
    ends early. A client without an HTTP session of its own (a stand-in) uses botocore's paginator."""
    send = _sender(client)
    if send is None:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
            yield page.get("Contents") or []
        return
    token: str | None = None
    lean = True
    while True:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            params["ContinuationToken"] = token
        page = _lean_page(client, send, {**params, "EncodingType": "url"}) if lean else None
        if page is None:
            lean = False
            answer = client.list_objects_v2(**params)
            page = (
                answer.get("Contents") or [],
                answer.get("NextContinuationToken") if answer.get("IsTruncated") else None,
            )
        yield page[0]
        token = page[1]
        if not token:
            return


# ----------------------------------------------------------------------------- the source
class _Gone(Exception):
    pass


class _Changed(Exception):
    pass


class _TooBig(Exception):
    pass


class _Refused(Exception):
    pass


def _error(exc: Exception) -> tuple[str, int]:
    resp = getattr(exc, "response", None) or {}
    code = str(resp.get("Error", {}).get("Code") or type(exc).__name__)
    status = int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, status


def _total_size(resp: dict[str, Any]) -> int | None:
    """The object's whole size from a (ranged) GET's headers."""
    content_range = resp.get("ContentRange") or ""
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isascii() and total.isdigit():
            return int(total)
    if not content_range and resp.get("ContentLength") is not None:
        return int(resp["ContentLength"])
    return None


class S3Source:
    """Seeds under one ``s3://bucket/prefix``. ``client`` is a boto3 S3 client (``None``: from the
    environment). Only ``ListObjectsV2``, ``GetObject`` and ``HeadObject`` are used: read-only
    credentials are enough."""

    kind = "s3"
    racy_window_ns = None  # the ETag changes with the content: a same-second edit cannot hide behind it
    deferred_hash = True  # a GET is a round trip: the worker's one read gives the content hash

    def __init__(
        self,
        location: S3Location,
        client: Any = None,
        patterns: tuple[str, ...] = DEFAULT_PATTERNS,
        page_size: int = LIST_PAGE,
    ) -> None:
        self.location = location
        self.client = client if client is not None else make_client()
        self.patterns = patterns
        self.page_size = page_size
        self.root = self.real_root = location.root
        self.outside = 0  # keys a listing returned outside the prefix (ignored)
        self.lean_misses = 0  # presigned GETs in a row that get_object had to answer (LEAN_GIVE_UP)
        # learnt here, before any read thread starts (no GET is sent: see GetSigner.learn)
        self.signer = GetSigner.learn(self.client, location.bucket) if _sender(self.client) else None

    # ------------------------------------------------------------------ listing
    def check(self) -> None:
        """Refuse a bucket that does not exist or cannot be listed, before the run touches anything."""
        from botocore.exceptions import ClientError

        try:
            self.client.list_objects_v2(Bucket=self.location.bucket, Prefix=self.location.prefix, MaxKeys=1)
        except ClientError as exc:
            code, status = _error(exc)
            if status >= 500:
                raise
            raise SeedRootError(f"cannot list {self.root}: {code} (HTTP {status})") from None

    def walk(self) -> Iterator[SeedFile | SeedOutcome]:
        """Every seed-named object under the prefix (in the listing's order, which S3 defines as the
        keys' UTF-8 byte order). The listing asks for URL-encoded keys and decodes them (``list_pages``,
        as botocore does), so keys with characters XML cannot carry survive it."""
        loc, root = self.location, self.root
        for contents in list_pages(self.client, loc.bucket, loc.prefix, self.page_size):
            for obj in contents:
                key, size = obj["Key"], int(obj.get("Size") or 0)
                if not key.startswith(loc.prefix):
                    self.outside += 1
                    log.warning(
                        "listing of %s returned a key outside the prefix; ignored: %r", root, show_key(key)[:200]
                    )
                    continue
                verdict = classify_key(loc.prefix, key, size, self.patterns)
                if verdict is None:
                    continue
                rel, reason = verdict
                seed = SeedFile(
                    root, rel, root, rel, size, mtime_ns(obj.get("LastModified")), 0, etag_fingerprint(obj.get("ETag"))
                )
                yield quarantine(seed, "discover", reason) if reason else seed

    def describe(self, rel: str) -> SeedFile | SeedOutcome | None:
        """A known object again (``HEAD``); ``None`` if it is gone."""
        from botocore.exceptions import ClientError

        key = self.location.key(rel)
        verdict = classify_key(self.location.prefix, key, 1, self.patterns)
        if verdict is None:
            return None
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as exc:
            code, status = _error(exc)
            if status in (403, 404) or code in ("NoSuchKey", "NotFound"):
                return None
            raise
        seed = SeedFile(
            self.root,
            verdict[0],
            self.root,
            verdict[0],
            int(head.get("ContentLength") or 0),
            mtime_ns(head.get("LastModified")),
            0,
            etag_fingerprint(head.get("ETag")),
        )
        return quarantine(seed, "discover", verdict[1]) if verdict[1] else seed

    # ------------------------------------------------------------------ reading
    def _get(self, seed: SeedFile, max_bytes: int, expect: int | None) -> tuple[bytes, dict[str, Any]]:
        """The object's bytes (at most ``max_bytes``) and the GET's response headers.

        ``expect``: the ETag fingerprint the object must still have (checked before the body is read)."""
        from botocore.exceptions import BotoCoreError, ClientError

        kw: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.location.key(seed.source)}
        if seed.size > 0:
            kw["Range"] = f"bytes=0-{max_bytes}"  # max_bytes + 1 bytes: enough to see that it is too big
        attempt = 0
        while True:
            attempt += 1
            lean = None
            if self.lean_misses < LEAN_GIVE_UP:
                lean = lean_get(self.client, kw["Bucket"], kw["Key"], kw.get("Range"), self.signer)
                self._lean_answered(lean is not None)
            if lean is not None and lean[0] == 404:
                raise _Gone("the object disappeared")
            try:
                resp = lean[1] if lean is not None else self.client.get_object(**kw)
            except ClientError as exc:
                code, status = _error(exc)
                if status == 404 or code in ("NoSuchKey", "NotFound"):
                    raise _Gone("the object disappeared") from None
                if (status == 416 or code == "InvalidRange") and "Range" in kw:  # it became empty: ask again, no range
                    del kw["Range"]
                    continue
                if status >= 500 or status == 0:
                    raise
                raise _Refused(f"{code} (HTTP {status})") from None
            body = resp["Body"]
            try:
                if expect is not None and etag_fingerprint(resp.get("ETag")) != expect:
                    raise _Changed("its ETag is different")
                total = _total_size(resp)
                if total is not None and total > max_bytes:
                    raise _TooBig(total)
                chunks, got = [], 0
                while got <= max_bytes:
                    chunk = body.read(min(READ_CHUNK, max_bytes + 1 - got))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                if got > max_bytes:
                    raise _TooBig(None)
                return b"".join(chunks), resp
            except (BotoCoreError, OSError) as exc:  # the body broke off (reset, timeout): fetch it again
                if attempt >= BODY_ATTEMPTS:
                    raise
                log.warning(
                    "reading %s%s broke off (%s); fetching it again",
                    self.root,
                    show_key(seed.source)[:200],
                    type(exc).__name__,
                )
            finally:
                body.close()

    def _lean_answered(self, answered: bool) -> None:
        """Count presigned GETs that had to be asked again; after ``LEAN_GIVE_UP`` in a row (a store or
        proxy that refuses them: every read would be two requests) the rest of the run uses get_object.
        (Threads race on the counter: at worst a few more tries.)"""
        if answered:
            self.lean_misses = 0
            return
        self.lean_misses += 1
        if self.lean_misses == LEAN_GIVE_UP:
            log.info(
                "%s: %d presigned GETs in a row were refused; reading with get_object only", self.root, LEAN_GIVE_UP
            )

    def admit(self, seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome:
        """Planning, without a download: ``seed`` as listed (its hash is the worker's to compute), or a
        quarantine if the listed size is over the limit."""
        if seed.size > max_bytes:
            limit = human_size(max_bytes)
            return quarantine(seed, "read", f"object is {human_size(seed.size)}, over the {limit} limit for a seed")
        return seed

    def hash(self, seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome:
        """Planning: ``seed`` with the hash of the bytes actually downloaded (and that download's ETag
        and size), or a quarantine (too big, refused by the store) or ``changed`` (gone)."""
        limit = human_size(max_bytes)
        if isinstance(admitted := self.admit(seed, max_bytes), SeedOutcome):  # from the listing: not downloaded
            return admitted
        try:
            data, resp = self._get(seed, max_bytes, None)
        except _Gone as exc:
            return SeedOutcome(seed, "changed", "read", f"{exc} while the run was planned")
        except _TooBig as exc:
            size = f"is {human_size(exc.args[0])}" if exc.args[0] else "grew"
            return quarantine(seed, "read", f"object {size}, over the {limit} limit for a seed")
        except _Refused as exc:
            return quarantine(seed, "read", f"cannot read object: {exc}")
        fingerprint = etag_fingerprint(resp.get("ETag"))
        same = fingerprint == seed.ino  # what was listed is what was read: keep the listing's fingerprint
        return replace(
            seed,
            size=len(data),
            mtime_ns=seed.mtime_ns if same else mtime_ns(resp.get("LastModified")),
            ino=fingerprint,
            sha256=hashlib.sha256(data).hexdigest(),
            hashed_ns=time.time_ns(),
        )

    def read(self, seed: SeedFile, max_bytes: int) -> bytes | SeedOutcome:
        """The worker: the planned object's bytes, if it still has the planned ETag (and the planned
        content, when planning hashed it)."""
        try:
            data, _ = self._get(seed, max_bytes, seed.ino)
        except (_Gone, _Changed) as exc:
            return SeedOutcome(seed, "changed", "read", f"changed since it was planned: {exc}")
        except _TooBig:
            return SeedOutcome(seed, "changed", "read", "changed since it was planned: it is over the size limit now")
        except _Refused as exc:
            return quarantine(seed, "read", f"cannot read object: {exc}")
        if seed.sha256 and hashlib.sha256(data).hexdigest() != seed.sha256:
            return SeedOutcome(seed, "changed", "read", "changed since it was planned: its content is different")
        return data
