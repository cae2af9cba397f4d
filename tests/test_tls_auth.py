"""TLS and basic auth on the pipeline side, live: nginx (Debian's) on 127.0.0.1 terminates TLS with a
certificate signed by a CA made here with ``openssl`` and asks for basic auth, in front of the real test
node (no OpenSearch security plugin matches 3.6.0 on Maven Central). The CLI on the sample seeds:

- succeeds with the right credentials (percent-encoded in OPENSEARCH_URL, with '#' and '/' in the
  password) and the CA bundle, verification on;
- fails clearly with a wrong password, the password masked;
- fails clearly when the certificate is not trusted and verification is on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "seed-writer", "p#ss/w0rd?x"
ENCODED = "p%23ss%2Fw0rd%3Fx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args, cwd: Path, stdin: str | None = None) -> str:
    return subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True, input=stdin).stdout


@pytest.fixture(scope="module")
def tls_proxy(tmp_path_factory, opensearch_url):
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing (scripts/test installs Debian's nginx)")
    d = tmp_path_factory.mktemp("tls_proxy")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=seednews test CA",
        cwd=d,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=d,
    )
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        cwd=d,
    )
    (d / "htpasswd").write_text(f"{USER}:{_openssl('passwd', '-apr1', '-stdin', cwd=d, stdin=PASSWORD).strip()}\n")
    (d / "tmp").mkdir()
    port = _free_port()
    (d / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy; fastcgi_temp_path {d}/tmp/fcgi;
  uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
  client_max_body_size 100m;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {d}/server.pem;
    ssl_certificate_key {d}/server.key;
    location / {{
      auth_basic "seednews test";
      auth_basic_user_file {d}/htpasswd;
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass {opensearch_url.rstrip("/")};
    }}
  }}
}}
""")
    proc = subprocess.Popen(
        [NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    try:
        yield {"port": port, "ca": str(d / "ca.pem"), "dir": d}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _cli(env_extra: dict, seed_dir: Path, index: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSEARCH_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(seed_dir), "--skip-images", "--index", index],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pipeline_over_tls_with_basic_auth(tls_proxy, seed_dir, opensearch_url):
    index = f"tls-{uuid.uuid4().hex[:8]}"
    url = f"https://{USER}:{ENCODED}@127.0.0.1:{tls_proxy['port']}"
    try:
        ok = _cli({"OPENSEARCH_URL": url, "OPENSEARCH_CA_CERTS": tls_proxy["ca"]}, seed_dir, index)
        out = ok.stdout + ok.stderr
        assert ok.returncode == 0, out[-3000:]
        assert "2 indexed" in out and PASSWORD not in out and ENCODED not in out
        assert f"OpenSearch: https://127.0.0.1:{tls_proxy['port']}" in out

        wrong = _cli(
            {
                "OPENSEARCH_URL": f"https://{USER}:not-it@127.0.0.1:{tls_proxy['port']}",
                "OPENSEARCH_CA_CERTS": tls_proxy["ca"],
            },
            seed_dir,
            index,
        )
        assert wrong.returncode == 2, wrong.stdout + wrong.stderr
        assert "refused the credentials (HTTP 401)" in wrong.stderr and "password ***" in wrong.stderr, wrong.stderr
        assert "not-it" not in wrong.stdout + wrong.stderr

        untrusted = _cli({"OPENSEARCH_URL": url}, seed_dir, index)  # system CAs only, verification on
        assert untrusted.returncode == 2, untrusted.stdout + untrusted.stderr
        assert "is not trusted" in untrusted.stderr and "OPENSEARCH_CA_CERTS" in untrusted.stderr, untrusted.stderr
        assert PASSWORD not in untrusted.stderr and ENCODED not in untrusted.stderr
    finally:
        from pipeline.config import Settings
        from pipeline.stores.client import make_client

        client = make_client(Settings(opensearch_url=opensearch_url))
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=index, ignore=[404])
