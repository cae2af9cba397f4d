"""Tests of pipeline.stages.images against REAL HTTP servers on loopback (no mocked HTTP client).

No test sends traffic to a non-loopback address: host names are mapped by an injected resolver,
and URLs naming other addresses (10.0.0.1, ::1, 127.0.0.2 ...) must be refused before any connect.
"""

from __future__ import annotations

import asyncio
import http.server
import re
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager

import aiohttp
import pytest

from pipeline import times
from pipeline.config import Settings
from pipeline.run import flow
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.safety import netsafe
from pipeline.safety.netsafe import AddressPolicy
from pipeline.stages.images import config, responses
from pipeline.stages.images.annotate import (
    annotate_document,
    collect_image_urls,
    summarize,
)
from pipeline.stages.images.cache import InMemoryVerdictCache
from pipeline.stages.images.checker import check_images
from pipeline.stages.images.config import ImageCheckConfig
from pipeline.stores import imagecache
from pipeline.stores.imagecache import OpenSearchVerdictCache
from pipeline.types import Document, ImageVerdict

LOOPBACK = ("127.0.0.1/32",)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
HUGE = 200 * 1024 * 1024


# --------------------------------------------------------------------------- loopback test server


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent: dict[str, int] = {}
        self.aborted: dict[str, bool] = {}
        self.done: dict[str, threading.Event] = {}

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(n for (m, p), n in self.requests.items() if (method in (None, m)) and (path in (None, p)))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _raw(self, status_line: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        """Send bytes exactly as given (http.server would refuse or re-encode hostile values)."""
        out = status_line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"
        self.wfile.write(out + (b"" if self.command == "HEAD" else body))
        self.wfile.flush()
        self.close_connection = True

    def _hostile(self, kind: str, value: bytes) -> None:
        close = (b"Connection", b"close")
        if kind == "retry-after":
            self._raw(b"HTTP/1.1 429 Too Many Requests", [(b"Retry-After", value), (b"Content-Length", b"0"), close])
        elif kind == "location":
            self._raw(b"HTTP/1.1 302 Found", [(b"Location", value), (b"Content-Length", b"0"), close])
        elif kind == "content-length":
            self._raw(b"HTTP/1.1 200 OK", [(b"Content-Type", b"image/jpeg"), (b"Content-Length", value), close], JPEG)
        elif kind == "content-type":
            self._raw(
                b"HTTP/1.1 200 OK",
                [(b"Content-Type", value), (b"Content-Length", str(len(JPEG)).encode()), close],
                JPEG,
            )
        elif kind == "status-line":
            self._raw(
                value, [(b"Content-Type", b"image/jpeg"), (b"Content-Length", str(len(JPEG)).encode()), close], JPEG
            )
        elif kind == "body":  # the GET fallback reads this body to sniff it
            if self.command == "HEAD":
                self._raw(b"HTTP/1.1 405 Method Not Allowed", [(b"Content-Length", b"0"), close])
            else:
                self._raw(b"HTTP/1.1 200 OK", [(b"Content-Type", b"application/octet-stream"), close], value)

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        st_ = self.server.stats
        path = self.path.split("?", 1)[0]
        with st_.lock:
            st_.requests[(self.command, path)] += 1
            n = st_.requests[(self.command, path)]
            st_.in_flight += 1
            st_.max_in_flight = max(st_.max_in_flight, st_.in_flight)
            shared = self.server.shared
            if shared is not None:
                shared.in_flight += 1
                shared.max_in_flight = max(shared.max_in_flight, shared.in_flight)
        try:
            self._dispatch(path, n)
        finally:
            with st_.lock:
                st_.in_flight -= 1
                if self.server.shared is not None:
                    self.server.shared.in_flight -= 1

    def _dispatch(self, path: str, n: int) -> None:
        head = self.command == "HEAD"
        if path in ("/ok.jpg", "/a.jpg", "/b.jpg") or path.startswith("/img/"):
            self._send(200, {"Content-Type": "image/jpeg"}, JPEG)
        elif path == "/missing.jpg":
            self._send(404, {"Content-Type": "text/html"}, b"<h1>nope</h1>")
        elif path == "/gone.jpg":
            self._send(410)
        elif path == "/headless.png":  # HEAD refused, GET fine
            if head:
                self._send(405, {"Allow": "GET"})
            else:
                self._send(200, {"Content-Type": "image/png"}, PNG)
        elif path == "/head500.png":
            self._send(500) if head else self._send(200, {"Content-Type": "image/png"}, PNG)
        elif path == "/untyped.png":  # no content type at all: must sniff the bytes
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            if not head:
                self.wfile.write(PNG)
        elif path == "/untyped.txt":
            self._send(200, {"Content-Type": "application/octet-stream"}, b"hello, world, not an image at all")
        elif path == "/page.html":
            self._send(200, {"Content-Type": "text/html; charset=utf-8"}, b"<html></html>")
        elif path.startswith("/chain/"):
            k = int(path.rsplit("/", 1)[1])
            self._send(302, {"Location": f"/chain/{k - 1}" if k > 1 else "/ok.jpg"})
        elif path == "/loop":
            self._send(302, {"Location": "/loop"})
        elif path == "/no-location":
            self._send(302)
        elif path == "/redirect":  # ?to=<absolute url>
            from urllib.parse import parse_qs, urlsplit

            to = parse_qs(urlsplit(self.path).query)["to"][0]
            self._send(301, {"Location": to})
        elif path == "/slow-headers.jpg":
            time.sleep(2.0)
            self._send(200, {"Content-Type": "image/jpeg"}, JPEG)
        elif path == "/slow-body.bin":  # headers at once, then 1 byte / 0.1 s: every socket op is quick
            if head:
                self._send(405)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif path in ("/huge.bin", "/huge.jpg"):
            if head:
                self._send(405)
                return
            st_ = self.server.stats
            st_.bytes_sent[path] = 0
            st_.aborted[path] = False
            ctype = "application/octet-stream" if path.endswith(".bin") else "image/jpeg"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(HUGE))
            self.end_headers()
            chunk = JPEG + b"\x00" * (65536 - len(JPEG))
            try:
                while st_.bytes_sent[path] < HUGE:
                    self.wfile.write(chunk)
                    st_.bytes_sent[path] += len(chunk)
            except OSError:
                st_.aborted[path] = True
            finally:
                st_.done.setdefault(path, threading.Event()).set()
        elif path == "/429-then-ok.jpg":
            if n == 1:
                self._send(429, {"Retry-After": "1"})
            else:
                self._send(200, {"Content-Type": "image/jpeg"}, JPEG)
        elif path == "/429-forever.jpg":
            self._send(429, {"Retry-After": "3600"})
        elif path == "/503.jpg":
            self._send(503)
        elif path.startswith("/tarpit/"):  # every hop: 503 + Retry-After: 1 twice, then a redirect onwards
            k = int(path.rsplit("/", 1)[1])
            if n <= 2 or k == 0:
                self._send(503, {"Retry-After": "1"})
            else:
                self._send(302, {"Location": f"/tarpit/{k - 1}"})
        elif path.startswith("/slowchain/"):  # every hop answers a redirect after 0.4 s
            k = int(path.rsplit("/", 1)[1])
            time.sleep(0.4)
            self._send(302, {"Location": f"/slowchain/{k - 1}" if k > 1 else "/ok.jpg"})
        elif path == "/slow.jpg":
            time.sleep(0.2)
            self._send(200, {"Content-Type": "image/jpeg"}, JPEG)
        elif path.startswith("/hostile/"):  # /hostile/<kind>/<i>: one malformed answer per case
            _, _, kind, i = path.split("/", 3)
            if kind in HOSTILE and i in {str(n) for n in range(len(HOSTILE[kind]))}:
                self._hostile(kind, HOSTILE[kind][int(i)])
            else:  # e.g. a relative Location resolved against /hostile/location/
                self._send(404)
        else:
            self._send(404)


HOSTILE: dict[str, list[bytes]] = {
    "retry-after": [
        "\u00b2".encode(),
        "\u0661".encode(),
        "\u00b2".encode("latin-1"),
        b"1e3",
        b"-5",
        b"5.5",
        b" 7 ",
        b"0x10",
        b"9" * 400,
        b"99999999999999999999",
        b"Fri, 31 Dec 9999 23:59:59 GMT",
        b"Mon, 99 Foo 2020 99:99:99 GMT",
        b"Wed, 21 Oct 2015 07:28:30 GMT",
        b"Thu, 01 Jan 1970 00:00:00 +9999",
        b"",
        b"\xff\xfe",
        b"nan",
        b"inf",
    ],
    "location": [
        b"http://[::1",
        b"http://exa mple.com/x.jpg",
        b"http://" + b"a" * 2000 + b".com/x.jpg",
        b"/" + b"p" * 9000,
        "http://b\u00fccher.example/x.jpg".encode(),
        b"http://\xe9x.com/x.jpg",
        b"http://\xff\xfe/",
        b"http:///x",
        b"http://host:99999/",
        b"http://host:-1/",
        b"http://host:abc/",
        b"//",
        b":::",
        b"javascript:alert(1)",
        b"http://[::1]:0/",
        b"http://[fe80::1%25eth0]/",
        b"http://user:pw@/",
        b"\xc3\x28",
        b"%zz",
        b"http://%00/",
        b"http://0x7f.1/",
    ],
    "content-length": [b"abc", b"-1", b"1e3", b"99999999999999999999999999", b"64, 65", b"\xb2", b" "],
    "content-type": [b"image/\xff\xfe", "image/j\u00e9pg".encode(), b";;;", b"\x00", b"image/jpeg; " + b"x" * 5000],
    "status-line": [
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 999 Weird",
        b"HTTP/1.1 099 Low",
        b"HTTP/9.9 200 OK",
        b"garbage",
        b"HTTP/1.1 200 \xff\xfe",
        b"HTTP/1.1 20 OK",
    ],
    "body": [b"", b"\x89PNG", b"\xff" * 100, b"<svg" + b"\x00" * 100],
}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", shared: Stats | None = None) -> None:
        self.stats = Stats()
        self.shared = shared
        super().__init__((host, 0), Handler)

    def get_request(self):
        conn = super().get_request()
        with self.stats.lock:
            self.stats.connections += 1
        return conn

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@contextmanager
def serve(host: str = "127.0.0.1", shared: Stats | None = None):
    srv = Server(host, shared)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server():
    with serve() as srv:
        yield srv


def cfg(**kw) -> ImageCheckConfig:
    base = dict(allow_networks=LOOPBACK, timeout=3.0, backoff=0.01)
    base.update(kw)
    return ImageCheckConfig(**base)


def check1(url: str, config: ImageCheckConfig | None = None, **kw) -> ImageVerdict:
    return check_images([url], config or cfg(), **kw)[url]


NOW = "2026-11-22T03:30:00Z"
NOW_TS = times.parse_iso_utc(NOW)


# --------------------------------------------------------------------------- basic verdicts


def test_ok_image_uses_head_only(server):
    v = check1(server.base + "/ok.jpg", now=NOW_TS)
    assert (v.status, v.http_code, v.reason) == ("ok", 200, "HTTP 200, image/jpeg")
    assert v.checked_at == NOW and not v.transient
    assert server.stats.requests == Counter({("HEAD", "/ok.jpg"): 1})


def test_404_is_broken_with_code(server):
    v = check1(server.base + "/missing.jpg")
    assert (v.status, v.http_code, v.reason) == ("broken", 404, "HTTP 404 Not Found")
    assert not v.transient
    assert server.stats.count("GET") == 0


def test_410_gone(server):
    v = check1(server.base + "/gone.jpg")
    assert (v.status, v.http_code, v.reason) == ("broken", 410, "HTTP 410 Gone")


def test_head_405_falls_back_to_get(server):
    v = check1(server.base + "/headless.png")
    assert (v.status, v.http_code, v.reason) == ("ok", 200, "HTTP 200, image/png")
    assert server.stats.requests == Counter({("HEAD", "/headless.png"): 1, ("GET", "/headless.png"): 1})


def test_head_500_falls_back_to_get(server):
    v = check1(server.base + "/head500.png")
    assert v.status == "ok"
    assert server.stats.count("GET", "/head500.png") == 1


def test_missing_content_type_sniffs_bytes(server):
    v = check1(server.base + "/untyped.png")
    assert (v.status, v.reason) == ("ok", "HTTP 200, no content type but the bytes are PNG")
    assert server.stats.count("GET", "/untyped.png") == 1


def test_octet_stream_that_is_not_an_image(server):
    v = check1(server.base + "/untyped.txt")
    assert v.status == "not_image"
    assert v.reason == "HTTP 200, application/octet-stream and the bytes are not a known image format"


def test_html_is_not_an_image(server):
    v = check1(server.base + "/page.html")
    assert (v.status, v.http_code, v.reason) == ("not_image", 200, "content type 'text/html' is not an image")


def test_dedup_and_input_order(server):
    urls = [server.base + "/a.jpg", server.base + "/b.jpg", server.base + "/a.jpg", "/rel.jpg", "/rel.jpg"]
    out = check_images(urls, cfg())
    assert list(out) == [server.base + "/a.jpg", server.base + "/b.jpg", "/rel.jpg"]
    assert server.stats.count("HEAD", "/a.jpg") == 1


def test_same_resource_spelled_twice_is_fetched_once(server):
    a = server.base + "/a.jpg"
    b = "  " + server.base.replace("http://", "HTTP://") + "/a.jpg#frag "
    out = check_images([a, b], cfg())
    assert out[a].status == out[b].status == "ok" and out[b].url == b
    assert server.stats.total == 1


# --------------------------------------------------------------------------- redirects


def test_redirect_chain_is_followed_hop_by_hop(server):
    v = check1(server.base + "/chain/3")
    assert v.status == "ok" and v.final_url == server.base + "/ok.jpg"
    assert [server.stats.count("HEAD", f"/chain/{k}") for k in (3, 2, 1)] == [1, 1, 1]


def test_too_many_redirects(server):
    v = check1(server.base + "/loop", cfg(max_redirects=3))
    assert (v.status, v.http_code, v.reason) == ("broken", 302, "too many redirects (more than 3)")
    assert server.stats.count("HEAD", "/loop") == 4


def test_redirect_without_location(server):
    v = check1(server.base + "/no-location")
    assert (v.status, v.http_code, v.reason) == ("broken", 302, "HTTP 302 Found without a Location header")


def test_redirect_to_other_loopback_address_is_blocked_without_connecting(server):
    with serve("127.0.0.2") as other:
        target = other.base + "/ok.jpg"
        v = check1(f"{server.base}/redirect?to={target}")
        assert v.status == "blocked"
        assert v.reason == f"redirect to {target}: address 127.0.0.2 is loopback"
        assert other.stats.connections == 0
        # and the same server is fine when the allow-list names it
        v2 = check1(f"{server.base}/redirect?to={target}", cfg(allow_networks=("127.0.0.1/32", "127.0.0.2/32")))
        assert v2.status == "ok" and other.stats.connections == 1


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://[::1]:9/x.jpg", "address ::1 is loopback"),
        ("http://10.0.0.1/x.jpg", "address 10.0.0.1 is private"),
        ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local (cloud metadata endpoint)"),
        ("http://[::ffff:10.0.0.1]/x.jpg", "address ::ffff:a00:1 is an IPv4-mapped form of private address 10.0.0.1"),
        ("http://2130706433/x.jpg", "numeric host '2130706433' is a non-canonical form of 127.0.0.1; refused"),
        ("file:///etc/passwd", "scheme 'file' is not allowed (only http and https)"),
    ],
)
def test_redirect_to_unsafe_target_is_blocked(server, target, reason):
    from urllib.parse import quote

    v = check1(f"{server.base}/redirect?to={quote(target, safe='')}")
    assert v.status == "blocked"
    assert v.http_code in (None, 301)
    assert v.reason.endswith(reason)
    assert server.stats.count() == 1  # only the redirecting request


# --------------------------------------------------------------------------- SSRF default closed


def test_default_config_blocks_loopback_and_never_connects(server):
    v = check_images([server.base + "/ok.jpg"])[server.base + "/ok.jpg"]
    assert (v.status, v.reason) == ("blocked", "address 127.0.0.1 is loopback")
    time.sleep(0.05)
    assert server.stats.connections == 0


@pytest.mark.parametrize(
    ("url", "status", "reason"),
    [
        (
            "http://0x7f000001/a.jpg",
            "blocked",
            "numeric host '0x7f000001' is a non-canonical form of 127.0.0.1; refused",
        ),
        (
            "http://2130706433/a.jpg",
            "blocked",
            "numeric host '2130706433' is a non-canonical form of 127.0.0.1; refused",
        ),
        ("http://127.1/a.jpg", "blocked", "numeric host '127.1' is a non-canonical form of 127.0.0.1; refused"),
        (
            "http://0177.0.0.1/a.jpg",
            "blocked",
            "numeric host '0177.0.0.1' is a non-canonical form of 127.0.0.1; refused",
        ),
        (
            "http://[::ffff:127.0.0.1]/a.jpg",
            "blocked",
            "address ::ffff:7f00:1 is an IPv4-mapped form of loopback address 127.0.0.1",
        ),
        (
            "http://[2002:7f00:1::]/a.jpg",
            "blocked",
            "address 2002:7f00:1:: is a 6to4 form of loopback address 127.0.0.1",
        ),
        (
            "http://[64:ff9b::a9fe:a9fe]/a.jpg",
            "blocked",
            "address 64:ff9b::a9fe:a9fe is a NAT64 form of link-local (cloud metadata endpoint) address 169.254.169.254",
        ),
        ("http://100.64.1.1/a.jpg", "blocked", "address 100.64.1.1 is shared address space (CGNAT 100.64.0.0/10)"),
        ("http://0.0.0.0/a.jpg", "blocked", "address 0.0.0.0 is unspecified"),
        ("http://224.0.0.1/a.jpg", "blocked", "address 224.0.0.1 is multicast"),
        ("http://240.0.0.1/a.jpg", "blocked", "address 240.0.0.1 is reserved"),
        ("http://[fd00::1]/a.jpg", "blocked", "address fd00::1 is private (unique local)"),
        ("http://[fe80::1]/a.jpg", "blocked", "address fe80::1 is link-local"),
        ("ftp://example.com/a.jpg", "blocked", "scheme 'ftp' is not allowed (only http and https)"),
        ("javascript:alert(1)", "blocked", "scheme 'javascript' is not allowed (only http and https)"),
        ("", "invalid", "URL is empty"),
        ("http:///a.jpg", "invalid", "URL has no host"),
        ("http://exa mple.com/a.jpg", "invalid", "host 'exa mple.com' is not a valid host name"),
        ("http://example.com:99999/a.jpg", "invalid", "URL cannot be parsed: Port out of range 0-65535"),
        ("http://999.1.1.1.1/a.jpg", "invalid", "host '999.1.1.1.1' is not a valid IP address or name"),
        (
            "/assets/images/organizations/techcrunch.com-50x50.jpg",
            "relative",
            "relative URL and no relative_base configured; not checked",
        ),
    ],
)
def test_static_verdicts_need_no_network(url, status, reason):
    async def no_dns(host):  # any DNS use would be a bug here
        raise AssertionError(f"unexpected lookup of {host}")

    v = check_images([url], ImageCheckConfig(), resolver=no_dns)[url]
    assert (v.status, v.reason, v.http_code) == (status, reason, None)


def test_hostname_resolving_to_blocked_address(server):
    names = {"img.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "10.1.2.3"]}

    async def resolver(host):
        return names[host]

    port = server.server_address[1]
    out = check_images([f"http://img.test:{port}/ok.jpg", f"http://mixed.test:{port}/ok.jpg"], cfg(), resolver=resolver)
    assert out[f"http://img.test:{port}/ok.jpg"].status == "ok"
    v = out[f"http://mixed.test:{port}/ok.jpg"]
    assert (v.status, v.reason) == ("blocked", "host 'mixed.test' resolves to 10.1.2.3: address 10.1.2.3 is private")
    # default policy: a name resolving to loopback is refused too, and never connected to
    v = check_images([f"http://img.test:{port}/ok.jpg"], resolver=resolver)[f"http://img.test:{port}/ok.jpg"]
    assert (v.status, v.reason) == ("blocked", "host 'img.test' resolves to 127.0.0.1: address 127.0.0.1 is loopback")
    assert server.stats.total == 1


def test_dns_failure_is_unreachable():
    async def resolver(host):
        raise netsafe.DNSLookupError(f"DNS lookup failed for {host!r}: Name or service not known")

    v = check1("http://nowhere.test/a.jpg", cfg(), resolver=resolver)
    assert (v.status, v.reason) == ("unreachable", "DNS lookup failed for 'nowhere.test': Name or service not known")
    assert v.transient


def test_connection_refused_is_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    v = check1(f"http://127.0.0.1:{port}/a.jpg")
    assert v.status == "unreachable" and v.reason.startswith(f"cannot connect to 127.0.0.1:{port}")
    assert v.transient


def test_connector_checks_the_address_actually_connected(server):
    """Bypass every pre-check: a bare session on the guarded connector must still refuse to connect."""

    async def go():
        policy = AddressPolicy()
        async with aiohttp.ClientSession(connector=netsafe.make_connector(policy), trust_env=False) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as ei:
                await session.get(server.base + "/ok.jpg")
            return ei.value

    err = asyncio.run(go())
    assert any(isinstance(e, netsafe.BlockedAddressError) for e in responses._exc_chain(err))
    time.sleep(0.05)
    assert server.stats.connections == 0


def test_proxy_environment_is_ignored(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    v = check1(server.base + "/ok.jpg")
    assert v.status == "ok" and server.stats.total == 1


# --------------------------------------------------------------------------- limits


def test_slow_headers_time_out(server):
    t = time.monotonic()
    v = check1(server.base + "/slow-headers.jpg", cfg(timeout=0.5))
    assert (v.status, v.reason, v.http_code) == ("timeout", "no complete response within 0.5s", None)
    assert time.monotonic() - t < 1.5 and v.transient


def test_deadline_covers_the_whole_request_not_each_read(server):
    """Every byte arrives within 0.1 s, so only a whole-request deadline can stop this."""
    t = time.monotonic()
    v = check1(server.base + "/slow-body.bin", cfg(timeout=0.6))
    assert v.status == "timeout"
    assert time.monotonic() - t < 1.5


@pytest.mark.parametrize("path", ["/huge.bin", "/huge.jpg"])
def test_huge_body_is_not_downloaded(server, path):
    v = check1(server.base + path, cfg(max_bytes=4096))
    assert v.status == "ok"
    done = server.stats.done.setdefault(path, threading.Event())
    assert done.wait(10), "server still sending: the client did not close the connection"
    assert server.stats.aborted[path] is True
    assert server.stats.bytes_sent[path] < HUGE // 8


def test_429_retry_after_is_honoured(server):
    t = time.monotonic()
    v = check1(server.base + "/429-then-ok.jpg")
    assert v.status == "ok"
    assert time.monotonic() - t >= 0.95
    assert server.stats.count("HEAD", "/429-then-ok.jpg") == 2


def test_429_retry_after_beyond_cap_is_not_waited_for(server):
    t = time.monotonic()
    v = check1(server.base + "/429-forever.jpg", cfg(max_retry_after=2))
    assert time.monotonic() - t < 1.0
    assert (v.status, v.http_code) == ("broken", 429)
    assert v.reason == "HTTP 429 Too Many Requests (Retry-After 3600s is longer than the 2s cap)"
    assert v.transient


def test_503_is_retried_with_backoff_then_reported(server):
    v = check1(server.base + "/503.jpg", cfg(retries=2))
    assert (v.status, v.http_code) == ("broken", 503)
    assert v.reason == "HTTP 503 Service Unavailable after 3 attempts"
    assert server.stats.count("HEAD", "/503.jpg") == 3 and v.transient


def test_redirect_and_retry_after_tarpit_ends_within_the_url_budget(server):
    """Seen: a 5-hop chain answering 503 + Retry-After at every hop held one URL for 279 s. Each hop here
    costs 2 s (two 1 s Retry-After waits) and the chain 12 s; the URL gets 2.5 s and the Retry-After that
    would outlast it is not waited for."""
    t = time.monotonic()
    v = check1(server.base + "/tarpit/5", cfg(url_budget=2.5, retries=2, max_retry_after=10))
    took = time.monotonic() - t
    assert (v.status, v.http_code) == ("timeout", 503) and v.transient
    assert re.fullmatch(
        r"gave up after 2(\.[0-9])? s \(1 redirect, 2 retries\): HTTP 503 Service Unavailable asks to wait 1 s, "
        r"more than the 0(\.[0-9])? s left of the 2\.5 s budget per URL",
        v.reason,
    ), v.reason
    assert server.stats.count("HEAD", "/tarpit/5") == 3 and server.stats.count("HEAD", "/tarpit/4") == 1
    assert 1.9 < took < 2.5 + 5.0  # hang guard; without the budget: 12 s


def test_url_budget_covers_every_hop_not_each_request(server):
    """Each hop answers within 0.4 s, far inside the 3 s per-request timeout; only the URL's budget stops it."""
    t = time.monotonic()
    v = check1(server.base + "/slowchain/5", cfg(timeout=3.0, url_budget=1.0))
    assert (v.status, v.http_code) == ("timeout", None)
    assert v.reason == "gave up after 1 s (2 redirects, 0 retries): the 1 s budget per URL is spent"
    assert time.monotonic() - t < 1.0 + 1.0


@contextmanager
def silent_hosts(n: int):
    """``n`` loopback servers that accept every connection and never send a byte."""
    import selectors

    sel = selectors.DefaultSelector()
    listeners, held, stop = [], [], threading.Event()
    for _ in range(n):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1024)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ)
        listeners.append(ls)

    def accept_forever() -> None:
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                try:
                    conn, _addr = key.fileobj.accept()  # type: ignore[union-attr]
                    held.append(conn)
                except OSError:
                    pass

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield [f"http://127.0.0.1:{ls.getsockname()[1]}" for ls in listeners], held
    finally:
        stop.set()
        thread.join(5)
        for sock in listeners + held:
            sock.close()


def test_silent_hosts_cost_two_timeouts_at_most_not_one_per_url():
    """640 URLs on 8 hosts that accept and never answer. Once ``host_give_up`` requests in a row to a host
    timed out, its other URLs are not tried; until then up to ``host_give_up - 1`` more may have started.
    Bound: 2 x timeout (all 8 hosts at once: 8 x per_host 8 <= concurrency 64); without giving up it is
    ceil(640 / 64) x timeout = 10 x timeout."""
    with silent_hosts(8) as (bases, held):
        urls = [f"{b}/img/{i}.jpg" for b in bases for i in range(80)]
        t = time.monotonic()
        out = check_images(urls, cfg(timeout=1.0, per_host=8, concurrency=64, host_give_up=4))
        took = time.monotonic() - t
        connections = len(held)
    tried = [v for v in out.values() if v.reason == "no complete response within 1s"]
    given_up = [v for v in out.values() if v.reason.startswith("not tried: ")]
    assert summarize(out.values())["timeout"] == 640 and len(tried) + len(given_up) == 640
    assert 64 <= len(tried) <= 8 * (8 + 3) and connections == len(tried)
    port = bases[0].rsplit(":", 1)[1]
    assert re.fullmatch(
        rf"not tried: 127\.0\.0\.1:{port} did not answer ([4-9]|10|11) requests in a row within 1s",
        out[f"{bases[0]}/img/79.jpg"].reason,
    )
    assert took < 2 * 1.0 + 4.0  # hang guard; without giving up: 10 s


def test_silent_hosts_seed_is_capped_and_bounded():
    """The seed seen: one document, 640 image URLs on 8 silent hosts. Only the first 50 are checked (the
    others are unchecked, and counted); spread over 8 hosts that is one round of requests, one timeout."""
    with silent_hosts(8) as (bases, _held):
        images = [{"url": f"{bases[i % 8]}/img/{i}.jpg"} for i in range(640)]
        doc = Document("d1", {"title": "t", "images": images}, None, 1)  # type: ignore[arg-type]
        report = RunReport()
        options = RunOptions(seed_dir="unused", image_config=cfg(timeout=1.0))
        t = time.monotonic()
        [out], failed = flow.annotate_images([doc], None, Settings.from_env({}), options, report)
        took = time.monotonic() - t
    assert failed == []
    assert {k: n for k, n in report.images.items() if n} == {"timeout": 50, "unchecked": 590}
    checks = [img["check"] for img in out.source["images"]]
    assert [c["status"] for c in checks] == ["timeout"] * 50 + ["unchecked"] * 590
    assert checks[50]["reason"] == "not checked: only the first 50 image URLs of a document are checked"
    assert (out.source["image_health"], out.source["images_checked"], out.source["images_broken"]) == (
        "none_ok",
        50,
        50,
    )
    assert took < 1.0 + 5.0  # hang guard


def test_image_cap_is_per_document_and_counted(server):
    """Cap 3: the 4th and 5th URL of a document are not checked, even when another document of the
    batch has one of them among its first 3 (a document's annotations do not depend on its batch)."""
    a, b, c, d, e = (f"{server.base}/img/{x}.jpg" for x in "abcde")
    doc1 = Document("1", {"images": [{"url": u} for u in (a, b, a, c, d, e)]}, None, 1)  # type: ignore[arg-type]
    doc2 = Document("2", {"images": [{"url": d}]}, None, 1)  # type: ignore[arg-type]
    report = RunReport()
    options = RunOptions(seed_dir="unused", image_config=cfg(max_images_per_doc=3))
    (out1, out2), failed = flow.annotate_images([doc1, doc2], None, Settings.from_env({}), options, report)
    assert failed == []
    assert [i["check"]["status"] for i in out1.source["images"]] == ["ok"] * 4 + ["unchecked"] * 2
    assert out1.source["images"][5]["check"]["reason"] == (
        "not checked: only the first 3 image URLs of a document are checked"
    )
    assert (out1.source["image_health"], out1.source["images_checked"]) == ("all_ok", 4)
    assert out2.source["images"][0]["check"]["status"] == "ok"
    assert {k: n for k, n in report.images.items() if n} == {"ok": 4, "unchecked": 2}
    assert server.stats.count("HEAD", "/img/e.jpg") == 0 and server.stats.count("HEAD") == 4


def test_per_host_concurrency(server):
    urls = [f"{server.base}/slow.jpg?{i}" for i in range(12)]
    out = check_images(urls, cfg(per_host=3, concurrency=50))
    assert all(v.status == "ok" for v in out.values())
    assert server.stats.max_in_flight == 3


def test_total_concurrency():
    shared = Stats()
    with serve(shared=shared) as a, serve(shared=shared) as b, serve(shared=shared) as c:
        urls = [f"{s.base}/slow.jpg?{i}" for s in (a, b, c) for i in range(4)]
        out = check_images(urls, cfg(per_host=4, concurrency=2))
    assert all(v.status == "ok" for v in out.values())
    assert shared.max_in_flight == 2


def test_connections_are_reused(server):
    urls = [f"{server.base}/img/{i}.jpg" for i in range(60)]
    out = check_images(urls, cfg(per_host=4))
    assert summarize(out.values())["ok"] == 60
    assert server.stats.connections <= 8


# --------------------------------------------------------------------------- relative URLs


def test_relative_resolved_against_configured_base(server):
    v = check1("/ok.jpg", cfg(relative_base=server.base + "/some/page"))
    assert v.status == "ok" and v.url == "/ok.jpg" and v.final_url == server.base + "/ok.jpg"


def test_protocol_relative_uses_base_scheme(server):
    host = server.base.removeprefix("http:")
    v = check1(host + "/ok.jpg", cfg(relative_base="http://example.invalid/"))
    assert v.status == "ok"


# --------------------------------------------------------------------------- cache


def test_second_run_makes_no_requests(server):
    cache = InMemoryVerdictCache()
    urls = [server.base + p for p in ("/ok.jpg", "/missing.jpg", "/headless.png", "/page.html", "/503.jpg", "/chain/2")]
    urls.append("/relative.jpg")
    first = check_images(urls, cfg(), cache=cache, now=NOW_TS)
    requests, connections = server.stats.total, server.stats.connections
    assert requests > 0
    second = check_images(urls, cfg(), cache=cache, now=NOW_TS + 60)
    assert (server.stats.total, server.stats.connections) == (requests, connections)
    assert {k: v for k, v in second.items() if k != "/relative.jpg"} == {
        k: v for k, v in first.items() if k != "/relative.jpg"
    }
    assert second["/relative.jpg"].checked_at == times.iso_utc(NOW_TS + 60)  # recomputed, not cached
    assert "/relative.jpg" not in cache.data  # static verdicts are never cached


def test_cache_age_limits(server):
    cache = InMemoryVerdictCache()
    ok, gone, flaky = server.base + "/ok.jpg", server.base + "/missing.jpg", server.base + "/503.jpg"
    config = cfg(ok_ttl=7 * 86400, transient_ttl=3600, retries=0)
    check_images([ok, gone, flaky], config, cache=cache, now=NOW_TS)
    before = server.stats.requests.copy()
    # two hours later: the transient 503 is checked again, definite answers are not
    out = check_images([ok, gone, flaky], config, cache=cache, now=NOW_TS + 7200)
    assert server.stats.requests - before == Counter({("HEAD", "/503.jpg"): 1})
    assert out[ok].checked_at == NOW and out[flaky].checked_at == times.iso_utc(NOW_TS + 7200)
    # eight days later everything is checked again
    before = server.stats.requests.copy()
    check_images([ok, gone, flaky], config, cache=cache, now=NOW_TS + 8 * 86400)
    assert set(server.stats.requests - before) == {("HEAD", "/ok.jpg"), ("HEAD", "/missing.jpg"), ("HEAD", "/503.jpg")}


def test_failing_cache_does_not_fail_the_run(server, caplog):
    class Broken:
        def get_many(self, keys):
            raise ConnectionError("cache down")

        def put_many(self, verdicts):
            raise ConnectionError("cache down")

    v = check1(server.base + "/ok.jpg", cache=Broken())
    assert v.status == "ok"
    assert "cache lookup failed" in caplog.text and "cache write failed" in caplog.text


def test_check_images_works_inside_a_running_loop(server):
    async def inside():
        return check1(server.base + "/ok.jpg")

    assert asyncio.run(inside()).status == "ok"


def test_opensearch_cache_against_real_node(server, opensearch_url):
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[opensearch_url], timeout=30)
    index = f"test-image-cache-{uuid.uuid4().hex[:8]}"
    try:
        cache = OpenSearchVerdictCache(client, index=index)
        assert cache.get_many([server.base + "/ok.jpg"]) == {}  # missing index: just empty
        urls = [server.base + "/ok.jpg", server.base + "/missing.jpg", server.base + "/page.html"]
        first = check_images(urls, cfg(), cache=cache, now=NOW_TS)
        n = server.stats.total
        second = check_images(urls, cfg(), cache=OpenSearchVerdictCache(client, index=index), now=NOW_TS + 1)
        assert server.stats.total == n and second == first
        mapping = client.indices.get_mapping(index=index)[index]["mappings"]
        assert mapping["dynamic"] == "strict"
        client.indices.refresh(index=index)
        doc = client.get(index=index, id=imagecache.cache_doc_id(server.base + "/missing.jpg"))["_source"]
        assert doc["status"] == "broken" and doc["http_code"] == 404 and doc["host"] == "127.0.0.1"
        aggs = client.search(index=index, body={"size": 0, "aggs": {"s": {"terms": {"field": "status"}}}})
        assert {b["key"]: b["doc_count"] for b in aggs["aggregations"]["s"]["buckets"]} == {
            "ok": 1,
            "broken": 1,
            "not_image": 1,
        }
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()


# --------------------------------------------------------------------------- module layout


def test_package_exports_the_checker_api():
    """``pipeline.stages.images`` is the entry point: every name it exports is the defining module's object."""
    import importlib

    from pipeline.stages import images as im

    for name in im.__all__:
        obj = getattr(im, name)
        home = getattr(obj, "__module__", None)
        if home:  # classes and functions: the package hands out the very object its home module defines
            assert getattr(importlib.import_module(home), name) is obj, name
    assert {"check_images", "annotate_document", "summarize", "ImageCheckConfig"} <= set(im.__all__)


# --------------------------------------------------------------------------- small pure helpers


def test_parse_retry_after():
    assert responses.parse_retry_after("5", 0) == 5.0
    assert responses.parse_retry_after(None, 0) is None and responses.parse_retry_after("soon", 0) is None
    assert responses.parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", 1445412500.0) == 10.0


def test_sniff_image():
    assert responses.sniff_image(PNG) == "PNG" and responses.sniff_image(JPEG) == "JPEG"
    assert responses.sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WebP"
    assert responses.sniff_image(b"<?xml version='1.0'?><svg xmlns='...'/>") == "SVG"
    assert responses.sniff_image(b"<html>") is None


def test_transient_classification():
    def v(status, code=None):
        return ImageVerdict("u", status, code, "", NOW)

    assert v("timeout").transient and v("unreachable").transient and v("broken", 429).transient
    assert v("broken", 502).transient and not v("broken", 404).transient and not v("ok", 200).transient
    assert not v("not_image", 200).transient and not v("blocked").transient


def test_summarize():
    vs = [
        ImageVerdict("a", "ok", 200, "", NOW),
        ImageVerdict("b", "broken", 404, "", NOW),
        ImageVerdict("c", "ok", 200, "", NOW),
    ]
    s = summarize(vs)
    assert s["ok"] == 2 and s["broken"] == 1 and s["timeout"] == 0 and set(s) == set(config.STATUSES)


def test_config_validation():
    with pytest.raises(ValueError):
        ImageCheckConfig(allow_networks=("not a cidr",))
    with pytest.raises(ValueError):
        ImageCheckConfig(relative_base="/relative")
    with pytest.raises(ValueError):
        ImageCheckConfig(concurrency=0)
    for bad in ({"url_budget": 0}, {"host_give_up": -1}, {"max_images_per_doc": -1}):
        with pytest.raises(ValueError, match="url_budget must be > 0; host_give_up, max_images_per_doc >= 0"):
            ImageCheckConfig(**bad)


# --------------------------------------------------------------------------- documents

LOGO = "/assets/images/organizations/techcrunch.com-50x50.jpg"
HERO = "https://techcrunch.com/wp-content/uploads/2021/10/hero.jpg?w=1024"
REL_IMG = "https://example.com/related.jpg"
REL_LOGO = "https://example.com/logo.png"


def sample_doc() -> dict:
    return {
        "id": "abc",
        "title": "t",
        "url": "https://techcrunch.com/x",
        "provider": {
            "name": "TechCrunch",
            "domain": "techcrunch.com",
            "images": [{"url": LOGO, "width": 50, "height": 50}],
        },
        "topics": ["AI"],
        "images": [{"url": HERO, "width": 1024, "height": 682, "is_cached": True}],
        "related": [
            {
                "title": "r",
                "url": "https://example.com/r",
                "provider": {"name": "Ex", "domain": "example.com", "images": [{"url": REL_LOGO}]},
                "images": [{"url": REL_IMG, "width": 10, "height": 10}, {"url": HERO}],
            }
        ],
    }


def verdict(url, status, code=None, reason="r"):
    return ImageVerdict(url, status, code, reason, NOW)


def test_collect_image_urls_order_and_dedup():
    assert collect_image_urls(sample_doc()) == [HERO, LOGO, REL_IMG, REL_LOGO]
    assert collect_image_urls({"id": "x"}) == []
    assert collect_image_urls({"images": [{"url": ""}, {"width": 1}, "junk", {"url": 3}]}) == []


def test_annotate_without_verdicts_is_unchecked_and_pure():
    doc = sample_doc()
    out = annotate_document(doc, None)
    assert doc == sample_doc()  # input untouched
    assert out["image_health"] == "unchecked" and out["images_broken"] == 0 and out["images_checked"] == 0
    for img in out["images"] + out["provider"]["images"] + out["related"][0]["images"]:
        assert img["check"] == {"status": "unchecked", "http_code": None, "checked_at": None, "reason": None}
    assert out["related"][0]["provider"]["images"][0]["check"]["status"] == "unchecked"
    assert out["images"][0]["is_cached"] is True and out["images"][0]["width"] == 1024


def test_annotate_all_ok_relative_logo_does_not_count():
    vs = {HERO: verdict(HERO, "ok", 200, "HTTP 200, image/jpeg"), LOGO: verdict(LOGO, "relative")}
    out = annotate_document(sample_doc(), vs)
    assert out["images"][0]["check"] == {
        "status": "ok",
        "http_code": 200,
        "checked_at": NOW,
        "reason": "HTTP 200, image/jpeg",
    }
    assert out["provider"]["images"][0]["check"]["status"] == "relative"
    assert (out["image_health"], out["images_broken"], out["images_checked"]) == ("all_ok", 0, 1)


def test_annotate_related_images_do_not_count_for_health():
    vs = {
        HERO: verdict(HERO, "ok", 200),
        LOGO: verdict(LOGO, "ok", 200),
        REL_IMG: verdict(REL_IMG, "broken", 404),
        REL_LOGO: verdict(REL_LOGO, "timeout"),
    }
    out = annotate_document(sample_doc(), vs)
    assert out["related"][0]["images"][0]["check"]["http_code"] == 404
    assert out["related"][0]["images"][1]["check"]["status"] == "ok"  # same URL as the hero
    assert (out["image_health"], out["images_broken"], out["images_checked"]) == ("all_ok", 0, 2)


@pytest.mark.parametrize(
    ("hero", "logo", "health", "broken", "checked"),
    [
        ("ok", "broken", "some_broken", 1, 2),
        ("broken", "timeout", "none_ok", 2, 2),
        ("blocked", None, "none_ok", 1, 1),
        (None, None, "unchecked", 0, 0),
        ("relative", "relative", "unchecked", 0, 0),
    ],
)
def test_annotate_health(hero, logo, health, broken, checked):
    vs = {}
    if hero:
        vs[HERO] = verdict(HERO, hero)
    if logo:
        vs[LOGO] = verdict(LOGO, logo)
    out = annotate_document(sample_doc(), vs)
    assert (out["image_health"], out["images_broken"], out["images_checked"]) == (health, broken, checked)


def test_annotate_no_images():
    out = annotate_document({"id": "x", "title": "t", "related": [{"images": [{"url": REL_IMG}]}]}, {})
    assert (out["image_health"], out["images_broken"], out["images_checked"]) == ("no_images", 0, 0)
    assert annotate_document({"id": "y"}, None)["image_health"] == "no_images"


def test_annotate_image_without_url():
    out = annotate_document({"images": [{"width": 3}]}, {})
    assert out["images"][0]["check"]["status"] == "invalid"
    assert out["image_health"] == "none_ok"


def test_end_to_end_annotate_with_real_checks(server):
    doc = sample_doc()
    doc["images"] = [{"url": server.base + "/ok.jpg"}, {"url": server.base + "/missing.jpg"}]
    doc["related"] = []
    verdicts = check_images(collect_image_urls(doc), cfg())
    out = annotate_document(doc, verdicts)
    assert [i["check"]["status"] for i in out["images"]] == ["ok", "broken"]
    assert out["provider"]["images"][0]["check"]["status"] == "relative"
    assert (out["image_health"], out["images_broken"], out["images_checked"]) == ("some_broken", 1, 2)


def test_get_fallback_reuses_connection_for_small_bodies(server):
    urls = [f"{server.base}/headless.png?{i}" for i in range(20)]
    out = check_images(urls, cfg(per_host=1))
    assert all(v.status == "ok" for v in out.values())
    assert server.stats.count() == 40 and server.stats.connections == 1


# --------------------------------------------------------------------------- hostile hosts


def _assert_usable_verdict(v: ImageVerdict) -> None:
    import json

    assert v.status in config.STATUSES, v
    assert isinstance(v.reason, str) and 0 < len(v.reason) <= 600, v
    json.dumps(v.to_dict() if hasattr(v, "to_dict") else v.__dict__, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_host_answers_get_a_verdict_and_spare_the_other_urls(server, kind):
    """Every malformed answer is a verdict for that URL only: nothing escapes check_images and the
    well-behaved URLs checked in the same call are unaffected."""
    hostile = [f"{server.base}/hostile/{kind}/{i}" for i in range(len(HOSTILE[kind]))]
    good = [f"{server.base}/img/{kind}-{i}.jpg" for i in range(3)]
    urls = [good[0], *hostile[: len(hostile) // 2], good[1], *hostile[len(hostile) // 2 :], good[2]]
    out = check_images(urls, cfg(timeout=2.0, retries=1, max_retry_after=0.05))
    assert list(out) == urls
    for u in hostile:
        _assert_usable_verdict(out[u])
    for u in good:
        assert out[u].status == "ok", out[u]


def test_unicode_digit_retry_after_is_ignored_not_fatal(server):
    url = f"{server.base}/hostile/retry-after/0"  # Retry-After: ² (UTF-8)
    out = check_images([url, f"{server.base}/ok.jpg"], cfg(retries=1, backoff=0.01))
    assert (out[url].status, out[url].http_code) == ("broken", 429)
    assert out[url].reason == "HTTP 429 Too Many Requests after 2 attempts"  # backoff used instead
    assert out[f"{server.base}/ok.jpg"].status == "ok"


def test_malformed_location_is_a_verdict_for_that_url(server):
    bracket = f"{server.base}/hostile/location/0"  # Location: http://[::1
    space = f"{server.base}/hostile/location/1"  # Location: http://exa mple.com/x.jpg
    long = f"{server.base}/hostile/location/2"
    out = check_images([bracket, space, long, f"{server.base}/ok.jpg"], cfg())
    assert (out[bracket].status, out[bracket].http_code) == ("invalid", 302)
    assert "unparsable Location" in out[bracket].reason
    assert out[space].status == "invalid" and out[space].http_code == 302
    assert out[long].status in ("invalid", "unreachable") and len(out[long].reason) <= 600
    assert out[f"{server.base}/ok.jpg"].status == "ok"


def test_garbage_content_length_is_a_verdict(server):
    url = f"{server.base}/hostile/content-length/0"  # Content-Length: abc
    out = check_images([url, f"{server.base}/ok.jpg"], cfg())
    assert out[url].status == "unreachable" and "invalid HTTP response" in out[url].reason
    assert out[f"{server.base}/ok.jpg"].status == "ok"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("\u00b2", None),
        ("\u0661", None),
        ("\udcb2", None),
        ("1e3", None),
        ("-5", None),
        ("5.5", None),
        ("0x10", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("9" * 400, responses.MAX_RETRY_AFTER_SECONDS),
        ("Fri, 31 Dec 9999 23:59:59 GMT", responses.MAX_RETRY_AFTER_SECONDS),
        ("Mon, 99 Foo 2020 99:99:99 GMT", None),
        ("Thu, 01 Jan 1970 00:00:00 +9999", None),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 10.0),
    ],
)
def test_parse_retry_after_hostile_values(value, expected):
    assert responses.parse_retry_after(value, 1445412500.0) == expected
