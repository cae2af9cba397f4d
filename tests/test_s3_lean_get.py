"""The lean GET (``pipeline.sources.s3.lean_get``: a request signed by ``GetSigner``, or a presigned URL,
sent on the client's own HTTP session)
against a REAL S3-compatible server on loopback (``devtools.s3server``: SeaweedFS): it answers as
``get_object`` does, anything it cannot answer goes to ``get_object`` with the same outcome as before, the
presigned URL never reaches an error or a log, and a proxy configured for the client carries it too."""

from __future__ import annotations

import functools
import http.client
import logging
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("boto3", reason="boto3 is not installed: the s3 extra (pip install -e '.[s3]')")

from devtools import s3gets
from pipeline.sources import s3
from pipeline.sources.s3 import LEAN_GIVE_UP, GetSigner, S3Source, lean_get, list_pages, make_client, parse_url
from pipeline.types import SeedFile, SeedOutcome

BODY = b'---\ntitle: "Lean"\nwebUrl: "https://example.com/lean"\n---\n' + b"x" * 3000
MAX_BYTES = 1 << 20


@pytest.fixture
def bucket(s3_server):
    client = s3_server.client()
    name = f"lean-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="p/a.txt", Body=BODY)
    return client, name


def wrong_secret(s3_server):
    """A client of the test server whose secret is wrong: every request it signs is refused (403)."""
    return make_client(
        endpoint_url=s3_server.endpoint,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key="not-the-secret",
        max_attempts=1,
    )


def listed(client, bucket: str) -> SeedFile:
    source = S3Source(parse_url(f"s3://{bucket}/p"), client)
    (seed,) = [s for s in source.walk() if isinstance(s, SeedFile)]
    return seed


def test_a_presigned_get_answers_as_get_object_does(bucket):
    client, name = bucket
    head = client.head_object(Bucket=name, Key="p/a.txt")
    status, ranged = lean_get(client, name, "p/a.txt", f"bytes=0-{MAX_BYTES}")
    assert status == 206 and ranged["Body"].read() == BODY
    assert ranged["ContentRange"] == f"bytes 0-{len(BODY) - 1}/{len(BODY)}"
    assert (ranged["ETag"], ranged["LastModified"]) == (head["ETag"], head["LastModified"])
    status, whole = lean_get(client, name, "p/a.txt", None)
    assert status == 200 and whole["ContentLength"] == len(BODY) and whole["Body"].read() == BODY
    assert lean_get(client, name, "p/gone.txt", None) == (404, {})
    assert S3Source(parse_url(f"s3://{name}/p"), client).read(listed(client, name), MAX_BYTES) == BODY


@pytest.mark.parametrize(
    "key",
    ["p/a b %20 ?#+&=.txt", "p/café.txt", "p/cafe\u0301.txt", "p/日本/記事.md", "p/" + "l" * 200 + "/x~!$'()*,;@.txt"],
)
def test_odd_keys_are_read_by_the_presigned_get_itself(bucket, key):
    """Keys that need quoting in a URL are answered by the presigned GET, not by the fallback, whether
    botocore presigns the URL or ``GetSigner`` signs the request (the server checks the signature)."""
    client, name = bucket
    client.put_object(Bucket=name, Key=key, Body=key.encode())
    learnt = GetSigner.learn(client, name)
    assert learnt is not None
    for signer in (None, learnt):
        status, resp = lean_get(client, name, key, None, signer)
        assert status == 200 and resp["Body"].read() == key.encode()


def test_a_refused_presigned_get_goes_to_get_object_with_the_same_outcome(s3_server, bucket):
    """A 403 (here: a wrong secret) is not the lean GET's to explain: ``get_object`` asks again and its
    parsed error becomes the quarantine reason, as it was before there was a lean GET."""
    client, name = bucket
    seed = listed(client, name)
    wrong = wrong_secret(s3_server)
    gets: Counter[str] = Counter()
    s3gets.on_object_gets(wrong, lambda key: gets.update([key]))
    assert lean_get(wrong, name, "p/a.txt", None) is None
    gets.clear()
    outcome = S3Source(parse_url(f"s3://{name}/p"), wrong).read(seed, MAX_BYTES)
    assert isinstance(outcome, SeedOutcome) and outcome.state == "quarantined"
    assert outcome.reason.startswith("cannot read object: ") and outcome.reason.endswith("(HTTP 403)")
    assert gets == {"p/a.txt": 2}  # the presigned GET, then get_object's
    # a store that refuses every presigned GET is not asked twice for ever: after LEAN_GIVE_UP in a row,
    # the source reads with get_object alone
    source = S3Source(parse_url(f"s3://{name}/p"), wrong)
    for _ in range(LEAN_GIVE_UP + 3):
        assert source.read(seed, MAX_BYTES).reason == outcome.reason
    assert gets == {"p/a.txt": 2 + 2 * LEAN_GIVE_UP + 3}


def test_the_presigned_url_never_reaches_an_error_or_the_log(s3_server, bucket, caplog):
    """With the store down, the error the run raises is ``get_object``'s: it names the endpoint, not a
    URL that carries a signature."""
    client, name = bucket
    seed = listed(client, name)
    with socketless_port() as port:
        down = make_client(
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=s3_server.region,
            aws_access_key_id=s3_server.access_key,
            aws_secret_access_key=s3_server.secret_key,
            max_attempts=1,
            connect_timeout=2,
        )
        caplog.set_level(logging.DEBUG)
        with pytest.raises(Exception) as raised:
            S3Source(parse_url(f"s3://{name}/p"), down).read(seed, MAX_BYTES)
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "X-Amz-Signature" not in str(raised.value) and "X-Amz-Credential" not in str(raised.value)
    assert "X-Amz-Signature" not in caplog.text


def test_urllib3s_debug_lines_carry_no_signature(bucket, caplog):
    """At DEBUG urllib3 logs each request line; for a presigned URL (a listing page, a GET without a
    ``GetSigner``) that line is a bearer credential for its lifetime, so its signature and credential are
    redacted before any handler sees them. A header-signed GET's line has no query at all."""
    client, name = bucket
    sent = []
    session = client._endpoint.http_session
    send = session.send
    session.send = lambda request: sent.append(request) or send(request)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    assert S3Source(parse_url(f"s3://{name}/p"), client).read(listed(client, name), MAX_BYTES) == BODY
    status, presigned = lean_get(client, name, "p/a.txt", None)  # without a signer: a presigned URL
    assert status == 200 and presigned["Body"].read() == BODY
    lines = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert any('"GET /' in line and "/p/a.txt?" in line and "X-Amz-Signature=<redacted>" in line for line in lines)
    assert any('"GET /' in line and "/p/a.txt HTTP" in line for line in lines)  # GetSigner's: nothing to redact
    secrets = [
        v for r in sent for k, v in parse_qsl(urlsplit(r.url).query) if k in ("X-Amz-Signature", "X-Amz-Credential")
    ]
    secrets += [str(r.headers["Authorization"]).split("Signature=")[1] for r in sent if "Authorization" in r.headers]
    assert len(secrets) >= 4 and not [v for v in secrets if v[:24] in caplog.text]


def test_a_proxy_set_for_the_client_carries_the_presigned_get_too(s3_server, bucket, monkeypatch):
    """botocore takes ``HTTP_PROXY`` when the client is made; the lean GET goes through that client's
    session, so it goes through the proxy too (and works: the proxy forwards it)."""
    client, name = bucket
    seed = listed(client, name)
    with ForwardingProxy() as proxy:
        for var in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        proxied = s3_server.client()
        assert S3Source(parse_url(f"s3://{name}/p"), proxied).read(seed, MAX_BYTES) == BODY
    assert proxy.paths == [f"/{name}/p/a.txt"]
    (headers,) = proxy.headers  # GetSigner's request (botocore's get_object would carry its SDK headers)
    assert "authorization" in headers and "amz-sdk-invocation-id" not in headers


class socketless_port:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None


class ForwardingProxy:
    """A plain-HTTP forward proxy on loopback: records each request's path and headers, and forwards it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target = urlsplit(self.path)  # a proxy is sent the absolute URL
                path = target.path + (f"?{target.query}" if target.query else "")
                headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
                proxy.paths.append(path)
                proxy.headers.append({k.lower(): v for k, v in headers.items()})
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                try:
                    upstream.request("GET", path, headers=headers)
                    answer = upstream.getresponse()
                    body = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ForwardingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- the listing
ODD_KEYS = ["p/ctl\x01name.txt", "p/a b+c%20.txt", "p/café.txt", "p/cafe\u0301.txt", "p/日本/記事.md", "p/z&<>.txt"]


def shaped(objects) -> list[dict]:
    """What the walk reads of each listed object."""
    return [{k: o[k] for k in ("Key", "Size", "LastModified", "ETag")} for o in objects]


def botocore_listing(client, bucket: str, prefix: str) -> list[dict]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return shaped(o for page in pages for o in page["Contents"])


def test_the_presigned_listing_is_botocores_listing_page_by_page(bucket):
    """Odd keys (a control character, '+', '%', NFC and NFD, CJK, XML's own characters) come back
    decoded exactly as botocore decodes them, over several pages, without a botocore API call."""
    client, name = bucket
    for key in ODD_KEYS:
        client.put_object(Bucket=name, Key=key, Body=key.encode())
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.update(["call"]))
    pages = list(list_pages(client, name, "p/", page_size=3))
    assert [len(p) for p in pages] == [3, 3, 1] and not calls  # 7 objects, no call through botocore's pipeline
    assert [o for p in pages for o in p] == botocore_listing(client, name, "p/")


def test_a_listing_refused_half_way_goes_on_through_botocore_from_that_page(bucket, monkeypatch):
    client, name = bucket
    for key in ODD_KEYS:
        client.put_object(Bucket=name, Key=key, Body=key.encode())
    answered: list[int] = []
    lean_page = s3._lean_page

    def second_refused(*args, **kwargs):
        answered.append(1)
        return None if len(answered) == 2 else lean_page(*args, **kwargs)

    monkeypatch.setattr(s3, "_lean_page", second_refused)
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.update(["call"]))
    pages = list(list_pages(client, name, "p/", page_size=3))
    assert len(answered) == 2 and calls["call"] == 2  # pages 2 and 3 through botocore
    assert shaped(o for p in pages for o in p) == botocore_listing(client, name, "p/")


def test_a_refused_listing_raises_and_never_looks_empty(s3_server, bucket):
    from botocore.exceptions import ClientError

    _, name = bucket
    wrong = wrong_secret(s3_server)
    with pytest.raises(ClientError) as raised:
        list(S3Source(parse_url(f"s3://{name}/p"), wrong).walk())
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# ----------------------------------------------------------------------------- answers botocore would refuse
class CannedRaw:
    """The raw stream of a canned answer (what urllib3 hands botocore)."""

    def __init__(self, content: bytes) -> None:
        self.content, self.closed = content, False

    def stream(self, *_: object, **__: object):
        yield self.content

    def close(self) -> None:
        self.closed = True


def canned(status: int, headers: dict[str, str], content: bytes = b""):
    from botocore.awsrequest import AWSResponse

    return AWSResponse("http://127.0.0.1:9/", status, headers, CannedRaw(content))


def offline_client():
    """A real client whose presigned URLs are never sent (the answers are canned)."""
    return make_client(
        endpoint_url="http://127.0.0.1:9", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


LISTING = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><EncodingType>url</EncodingType>'
    "<IsTruncated>{truncated}</IsTruncated>"
    "<Contents><Key>p/a+b%01.txt</Key><LastModified>{when}</LastModified><ETag>&quot;e&quot;</ETag>"
    "<Size>{size}</Size></Contents></ListBucketResult>"
)


@pytest.mark.parametrize(
    ("status", "body", "answered"),
    [
        (200, LISTING.format(truncated="false", when="2026-01-02T03:04:05.000Z", size="12"), True),
        (200, LISTING.format(truncated="false", when="2026-01-02T03:04:05.000Z", size="12x"), False),
        (200, LISTING.format(truncated="false", when="yesterday", size="12"), False),
        (200, LISTING.format(truncated="true", when="2026-01-02T03:04:05.000Z", size="12"), False),  # no token
        (200, "<Error><Code>SlowDown</Code></Error>", False),
        (200, "<ListBucketResult", False),  # cut off
        (503, "<Error><Code>SlowDown</Code></Error>", False),
    ],
    ids=["listing", "bad-size", "bad-date", "truncated-no-token", "not-a-listing", "cut-off", "503"],
)
def test_a_listing_page_is_answered_only_when_it_is_a_whole_readable_listing(status, body, answered):
    page = s3._lean_page(offline_client(), lambda _: canned(status, {}, body.encode()), {"Bucket": "b", "Prefix": "p/"})
    if not answered:
        assert page is None
        return
    contents, token = page
    assert token is None and [(o["Key"], o["Size"], o["ETag"]) for o in contents] == [("p/a b\x01.txt", 12, '"e"')]


def test_a_get_with_a_date_botocore_cannot_read_goes_to_get_object(monkeypatch):
    answers = {"good": "Fri, 02 Jan 2026 03:04:05 GMT", "bad": "the day before yesterday"}
    raws = {}

    def send_for(which):
        def send(_):
            response = canned(200, {"Last-Modified": answers[which], "Content-Length": "2"}, b"ok")
            raws[which] = response.raw
            return response

        return send

    client = offline_client()
    monkeypatch.setattr(s3, "_sender", lambda _: send_for("good"))
    status, resp = lean_get(client, "b", "p/a.txt", None)
    assert status == 200 and resp["LastModified"].year == 2026 and resp["ContentLength"] == 2
    monkeypatch.setattr(s3, "_sender", lambda _: send_for("bad"))
    assert lean_get(client, "b", "p/a.txt", None) is None and raws["bad"].closed


# ----------------------------------------------------------------------------- GetSigner's requests
def offline(**kw):
    """A client that only signs here (nothing is sent): keys made up, endpoint never contacted."""
    return make_client(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret/with+chars", **kw)


CLIENTS = {
    "path-style custom endpoint": dict(endpoint_url="http://127.0.0.1:9/base", region_name="us-east-1"),
    "AWS, virtual-hosted": dict(region_name="eu-west-3", addressing="virtual"),
    "AWS, session token": dict(region_name="ap-south-1", aws_session_token="token/+="),
}


class Caught(Exception):
    """Raised from botocore's ``before-send``: the request it would send, never sent."""

    def __init__(self, request) -> None:
        self.request = request


def catch(request, **_):
    raise Caught(request)


@functools.cache
def signer_of(kind: str):
    kw = dict(CLIENTS[kind])
    token = kw.pop("aws_session_token", None)
    client = offline(aws_session_token=token, **kw)
    client.meta.events.register("before-send.s3.GetObject", catch)
    signer = GetSigner.learn(client, "news-bucket")
    assert signer is not None
    return client, signer


def scope(request) -> tuple[str, str]:
    """The credential scope of a header-signed request, and its date."""
    auth = request.headers["Authorization"]
    auth = auth.decode() if isinstance(auth, bytes) else auth
    date = request.headers["X-Amz-Date"]
    return auth.split("Credential=")[1].split(",")[0], date.decode() if isinstance(date, bytes) else date


@pytest.mark.parametrize("kind", CLIENTS)
@settings(max_examples=150, deadline=None)
@given(key=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60))
def test_a_signer_asks_for_the_url_get_object_asks_for_with_the_same_credential_scope(kind, key):
    """For any key: the URL botocore's ``get_object`` would send (scheme, host, quoted path), signed for the
    same access key, date, region and service (the signatures differ: botocore also signs its SDK headers)."""
    client, signer = signer_of(kind)
    key = "p/" + key
    ours = signer.request(key, {"Range": "bytes=0-9"})
    with pytest.raises(Caught) as caught:
        client.get_object(Bucket="news-bucket", Key=key, Range="bytes=0-9")
    botocores = caught.value.request
    assert urlsplit(ours.url)[:3] == urlsplit(botocores.url)[:3] and not urlsplit(ours.url).query
    ours_scope, botocores_scope = scope(ours), scope(botocores)
    assert ours_scope[0] == botocores_scope[0] or ours_scope[1] != botocores_scope[1]  # (unless a day turned)
    assert ours.headers["Range"] == "bytes=0-9"
    if kind == "AWS, session token":
        assert ours.headers["X-Amz-Security-Token"] == "token/+="


def test_clients_that_do_not_sign_get_object_with_sigv4_get_no_signer():
    """Unsigned clients and other signature versions GET botocore's presigned URL (``learn`` says ``None``)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    anonymous = boto3.session.Session().client(
        "s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    assert GetSigner.learn(anonymous, "news-bucket") is None
    sigv2 = boto3.session.Session().client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(signature_version="s3"),
    )
    assert GetSigner.learn(sigv2, "news-bucket") is None
    assert GetSigner.learn(offline(endpoint_url="http://127.0.0.1:9"), "news-bucket") is not None
