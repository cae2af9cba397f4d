"""The Dashboards import verifies an https Dashboards with a CA bundle: ``--ca-certs``, ``DASHBOARDS_CA_CERTS``,
or the usual ``REQUESTS_CA_BUNDLE`` (which ``requests`` itself ignores here: the session does not trust the
environment). Against a loopback HTTPS server whose certificate a CA made here signed."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline import cli
from pipeline.dashboards import load as dash
from pipeline.errors import DashboardsError

CA_VARIABLES = ("DASHBOARDS_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _certificates(d: Path) -> tuple[Path, Path, Path]:
    """(CA PEM, server certificate PEM, server key PEM): a CA, and a certificate it signed for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seednews test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = d / "ca.pem", d / "server.pem", d / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class _Dashboards(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.imports += 1  # type: ignore[attr-defined]
        data = json.dumps({"success": True, "successCount": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def https_dashboards(tmp_path_factory):
    ca, cert, key = _certificates(tmp_path_factory.mktemp("dashboards_tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dashboards)
    server.imports = 0  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(monkeypatch):
    for name in (
        *CA_VARIABLES,
        "DASHBOARDS_URL",
        "DASHBOARDS_USER",
        "DASHBOARDS_PASSWORD",
        "DASHBOARDS_VERIFY_CERTS",
        "DASHBOARDS_TENANT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _import(url: str, *extra: str) -> int:
    return cli.main(["dashboards", "import", "--url", url, *extra])


def test_an_unknown_ca_is_refused(https_dashboards, env, capsys):
    server, url, _ = https_dashboards
    before = server.imports
    assert _import(url) == 2
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    assert server.imports == before


@pytest.mark.parametrize("how", ["--ca-certs", *CA_VARIABLES])
def test_the_ca_bundle_is_taken_from_the_flag_or_the_environment(https_dashboards, env, capsys, how):
    server, url, ca = https_dashboards
    before = server.imports
    if how == "--ca-certs":
        assert _import(url, "--ca-certs", str(ca)) == 0
    else:
        env.setenv(how, str(ca))
        assert _import(url) == 0
    assert "imported 1 saved objects" in capsys.readouterr().out
    assert server.imports == before + 1


def test_the_flag_wins_and_a_missing_bundle_is_a_clear_error(https_dashboards, env, capsys, tmp_path):
    _, url, ca = https_dashboards
    env.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    assert _import(url, "--ca-certs", str(ca)) == 0  # the flag first: the variable is not even looked at
    assert _import(url) == 2
    assert f"REQUESTS_CA_BUNDLE names no CA bundle file or directory: '{tmp_path / 'gone.pem'}'" in (
        capsys.readouterr().err
    )


def test_the_setting_reaches_requests_verify(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    https = "https://dash.example:5601"

    def verify(env: dict, **kw) -> bool | str:
        return dash.build_import_request(dash.DashboardsConfig.from_env(env, **kw), b"{}").verify

    assert verify({"DASHBOARDS_URL": https}) is True  # certifi's bundle
    assert verify({"DASHBOARDS_URL": https, "DASHBOARDS_CA_CERTS": str(ca), "REQUESTS_CA_BUNDLE": "/x"}) == str(ca)
    assert verify({"DASHBOARDS_URL": https, "REQUESTS_CA_BUNDLE": str(ca)}) == str(ca)
    assert verify({"DASHBOARDS_URL": https, "REQUESTS_CA_BUNDLE": "/x"}, ca_certs=str(ca)) == str(ca)
    # verification off, or plain http: no bundle needed, none checked
    assert verify({"DASHBOARDS_URL": https, "DASHBOARDS_CA_CERTS": "/x", "DASHBOARDS_VERIFY_CERTS": "false"}) is False
    assert verify({"DASHBOARDS_URL": "http://127.0.0.1:5601", "DASHBOARDS_CA_CERTS": "/x"}) is True
    with pytest.raises(DashboardsError, match="DASHBOARDS_CA_CERTS names no CA bundle file or directory: '/x'"):
        verify({"DASHBOARDS_URL": https, "DASHBOARDS_CA_CERTS": "/x"})
