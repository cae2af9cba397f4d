"""The Dashboards import names its tenant: with the security plugin's multitenancy on, a request without
the ``securitytenant`` header lands in the importing user's Private tenant, where analysts cannot see it.
Against a loopback HTTP server that records each request's headers."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from pipeline import cli
from pipeline.dashboards import load as dash
from pipeline.errors import DashboardsError


class _Dashboards(http.server.BaseHTTPRequestHandler):
    """Records the headers of each request and answers as an import that went well."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.path, self.headers))  # type: ignore[attr-defined]
        data = json.dumps({"success": True, "successCount": 18}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def dashboards() -> Iterator[tuple[http.server.ThreadingHTTPServer, str]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dashboards)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(monkeypatch):
    for name in ("DASHBOARDS_URL", "DASHBOARDS_USER", "DASHBOARDS_PASSWORD", "DASHBOARDS_TENANT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _tenants(server) -> list[str | None]:
    return [headers.get("securitytenant") for _path, headers in server.seen]


def test_the_global_tenant_by_default_on_every_request(dashboards, env, capsys):
    server, url = dashboards
    assert cli.main(["dashboards", "import", "--url", url]) == 0
    assert cli.main(["dashboards", "import", "--url", url]) == 0
    assert _tenants(server) == ["global", "global"]
    assert all(path.startswith("/api/saved_objects/_import") for path, _ in server.seen)
    assert "tenant: global" in capsys.readouterr().out


def test_the_configured_tenant_and_the_flag_first(dashboards, env):
    server, url = dashboards
    env.setenv("DASHBOARDS_TENANT", " analysts ")
    assert cli.main(["dashboards", "import", "--url", url]) == 0
    assert cli.main(["dashboards", "import", "--url", url, "--tenant", "__user__"]) == 0
    env.setenv("DASHBOARDS_TENANT", "")  # blank is unset
    assert cli.main(["dashboards", "import", "--url", url]) == 0
    assert _tenants(server) == ["analysts", "__user__", "global"]


def test_a_tenant_that_cannot_be_a_header_is_refused_before_any_request(dashboards, env, capsys):
    server, url = dashboards
    env.setenv("DASHBOARDS_TENANT", "global\r\nX-Injected: 1")
    assert cli.main(["dashboards", "import", "--url", url]) == 2
    assert "DASHBOARDS_TENANT must be printable ASCII" in capsys.readouterr().err
    assert server.seen == []


def test_the_request_carries_the_tenant():
    request = dash.build_import_request(dash.DashboardsConfig.from_env({}, tenant="ops"), b"{}\n")
    assert request.headers[dash.TENANT_HEADER] == "ops" and request.headers["osd-xsrf"] == "true"
    assert dash.DashboardsConfig.from_env({}).tenant == dash.DEFAULT_TENANT == "global"
    with pytest.raises(DashboardsError, match="--tenant must be printable ASCII"):
        dash.DashboardsConfig.from_env({}, tenant="caf\u00e9")
