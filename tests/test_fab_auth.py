"""The Airflow UI's auth manager as docker-compose.yml configures it, for real: an Airflow of this test's own
(SQLite) set up by the steps airflow-init runs (its migrations, then docker/airflow_admin_user.py with a
hostile password in its environment), then ``airflow api-server`` on a free loopback port. Through HTTP the
admin logs in at FAB's token endpoint and the token opens the REST API; a wrong password is refused; running
the admin script again with a new password retires the old one."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import AIRFLOW, ROOT
from tests.stackkit import free_port, wait_until

SERVICES = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
AUTH_MANAGER = SERVICES["airflow-apiserver"]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"]
IMAGE_ROOT = "/opt/seednews/"  # the checkout's place in the image
ENTRYPOINT = "/entrypoint "  # the image's entrypoint, which runs the rest of the line
ADMIN_SCRIPT = "docker/airflow_admin_user.py"
ADMIN = "admin"
FIRST_PASSWORD = 'p"a\\ss#@%w0rd!'
SECOND_PASSWORD = "n3w 'pä$$' {x} \\ ; `id`"
TOKEN_ROUTE = "/auth/token"  # FAB's token endpoint (the provider's auth_router, mounted under /auth)
START_TIMEOUT = 90.0
STEP_TIMEOUT = 300
STOP_TIMEOUT = 30


def _init_steps() -> list[list[str]]:
    """airflow-init's commands that prepare the database and the admin, in its order, as local argv: every
    line run through the image's entrypoint except the connection import (the OpenSearch side, tested in
    tests/test_compose.py)."""
    steps = []
    for line in SERVICES["airflow-init"]["command"][-1].splitlines():
        line = line.strip()
        if not line.startswith(ENTRYPOINT) or "connections" in line:
            continue
        program, *args = shlex.split(line.removeprefix(ENTRYPOINT))
        local = {"airflow": AIRFLOW, "python": sys.executable}[program]
        steps.append(
            [local, *(str(ROOT / a.removeprefix(IMAGE_ROOT)) if a.startswith(IMAGE_ROOT) else a for a in args)]
        )
    return steps


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _post_json(url: str, body: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _get(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _login(base: str, password: str) -> tuple[int, str | None]:
    status, body = _post_json(f"{base}{TOKEN_ROUTE}", {"username": ADMIN, "password": password})
    return status, body.get("access_token")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not ended within STOP_TIMEOUT."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def fab_airflow(tmp_path: Path) -> dict[str, str]:
    """The environment of an Airflow of this test's own, configured with the compose's auth manager."""
    dags = tmp_path / "dags"
    dags.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path}/airflow.db",
        AIRFLOW__CORE__AUTH_MANAGER=AUTH_MANAGER,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        ADMIN_USER=ADMIN,
    )
    return env


def test_the_compose_admin_logs_in_through_fab_and_its_token_opens_the_rest_api(fab_airflow, tmp_path):
    steps = _init_steps()
    assert [AIRFLOW, "db", "migrate"] in steps and steps[-1] == [sys.executable, str(ROOT / ADMIN_SCRIPT)], steps
    for argv in steps:
        _run(argv, {**fab_airflow, "ADMIN_PASSWORD": FIRST_PASSWORD})

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**fab_airflow, "AIRFLOW__API__BASE_URL": base}
    log = tmp_path / "api-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )
    try:
        try:
            wait_until(lambda: _get(f"{base}/api/v2/version", None) == 200, START_TIMEOUT, "the api-server")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{log.read_text(errors='replace')[-4000:]}") from None

        status, token = _login(base, FIRST_PASSWORD)
        assert status == 201 and token, (status, log.read_text(errors="replace")[-4000:])
        assert _get(f"{base}/api/v2/dags", token) == 200
        assert _get(f"{base}/api/v2/dags", None) == 401
        assert _login(base, FIRST_PASSWORD + "x") == (401, None)

        _run(steps[-1], {**fab_airflow, "ADMIN_PASSWORD": SECOND_PASSWORD})
        assert _login(base, FIRST_PASSWORD) == (401, None)
        status, token = _login(base, SECOND_PASSWORD)
        assert status == 201 and token
        assert _get(f"{base}/api/v2/dags", token) == 200
    finally:
        _stop(server)
