"""Secrets of the local stacks stay private: ``stack.json`` holds no password and is created 0600, the Celery
stack's Redis does not run as root, and ``.env`` (the compose deployment's secrets) is never committed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

import stack
import stack_celery


def test_stack_json_is_created_0600_and_holds_no_password(tmp_path, monkeypatch):
    (tmp_path / "stack.tmp").write_text("{}")  # a leftover temporary file, wide open
    (tmp_path / "stack.tmp").chmod(0o666)
    created = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        created.append((Path(path).name, flags & os.O_CREAT and mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    secret: dict = {}
    connection = {"conn_type": "opensearch", "host": "h", "login": "u", "password": "s3cr3t-pw"}
    state = {"connection": stack.keep_connection_password(tmp_path, secret, connection)}
    stack.write_state(tmp_path, state)
    text = (tmp_path / "stack.json").read_text()
    assert "s3cr3t-pw" not in text and json.loads(text)["connection"]["login"] == "u"
    assert stat.S_IMODE((tmp_path / "stack.json").stat().st_mode) == 0o600
    assert ("stack.tmp", 0o600) in created  # created with its mode, not chmod-ed afterwards
    assert json.loads((tmp_path / "secrets.json").read_text())["opensearch_password"] == "s3cr3t-pw"
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    # the services still get the password, from secrets.json
    env = stack.airflow_env(tmp_path, {**_secrets(), **secret}, {**state, "api_port": 1, "pg_port": 2})
    assert json.loads(env["AIRFLOW_CONN_SEEDNEWS_OPENSEARCH"])["password"] == "s3cr3t-pw"
    with pytest.raises(ValueError, match=r"stack\.json would hold the OpenSearch password"):
        stack.write_state(tmp_path, {"connection": connection})


def _secrets() -> dict:
    keys = ("pg_airflow_password", "fernet_key", "admin_user", "admin_password", "api_secret_key", "jwt_secret")
    return {k: "x" for k in keys}


def test_env_files_are_ignored_but_the_example_is_tracked():
    def ignored(path: str) -> bool:
        out = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
        return out.returncode == 0

    assert ignored(".env") and ignored("sub/.env") and ignored(".env.local")
    assert not ignored(".env.example")
    tracked = subprocess.run(["git", "ls-files", ".env.example"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ".env.example"


def _redis(port: int, *commands: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall("".join(f"{c}\r\n" for c in commands).encode())
        s.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: s.recv(4096), b""))


@pytest.mark.skipif(
    os.geteuid() != 0 or not any(os.access(p, os.X_OK) for p in stack_celery.REDIS_CANDIDATES),
    reason="needs root (to drop to the Redis user) and Debian's redis-server",
)
def test_the_celery_stacks_redis_runs_as_an_unprivileged_user(tmp_path):
    cache = Path(tempfile.mkdtemp(prefix="seednews-redis-"))  # not under pytest's 0700 tmp: Redis must reach it
    cache.chmod(0o755)
    home = tmp_path / "stack"
    home.mkdir()
    secret = {"redis_password": uuid.uuid4().hex}
    state: dict = {}
    try:
        port = stack_celery.redis_up(
            home,
            secret,
            state,
            say=lambda _: None,
            apt_install=None,
            free_port=stack.free_port,
            port_open=stack.port_open,
            pid_of=stack._pid,
            cache=cache,
        )
        pid = int((home / "run" / "redis.pid").read_text())
        uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
        redis_uid = stack_celery.redis_identity()[0]
        assert uids.split()[1:] == [str(redis_uid)] * 4 and redis_uid != 0  # real, effective, saved, fs
        assert _redis(port, "PING").startswith(b"-NOAUTH")  # the password is required...
        assert _redis(port, f"AUTH {secret['redis_password']}", "PING") == b"+OK\r\n+PONG\r\n"  # ...and works
        conf = home / "redis" / "redis.conf"  # the password's file stays root's
        assert (conf.stat().st_uid, stat.S_IMODE(conf.stat().st_mode)) == (0, 0o600)
    finally:
        stack.stop_service(home, "redis")
        shutil.rmtree(cache, ignore_errors=True)
