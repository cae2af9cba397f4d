"""docker-compose.yml loaded by compose-go, the loader of Docker Compose itself (devtools/composecheck, a
small Go program pinned by its go.mod and go.sum): interpolation from an env file, the Compose
Specification's schema, normalization and consistency, as ``docker compose config`` does them. Go comes from
PATH (or /usr/local/go); the modules come from the Go module proxy into the project's Go caches (the cache
folder, as for devtools/s3server.py), checked against the committed go.sum.

The shipped .env.example must fail with the "set X in .env" messages (its secrets are empty); filled in with
passwords made of every character that breaks quoting, the project loads and each service receives each
password exactly; a broken copy of the file fails with a line that names the file and the fault."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.s3server import go_dir
from tests.conftest import ROOT

CHECKER = ROOT / "devtools" / "composecheck"
GO_FALLBACK = Path("/usr/local/go/bin/go")
#: a password with every character that breaks a URL, a JSON string, a shell word or a .env line
NASTY = 'p"w\\#d @%$x{y}'


def _go() -> str:
    found = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.exists() else None)
    if found is None:
        pytest.fail("Go is not installed: put `go` (the version devtools/composecheck/go.mod names, or newer) on PATH")
    return found


@pytest.fixture(scope="module")
def composecheck(tmp_path_factory) -> Path:
    """The checker, built from the committed go.mod/go.sum (-mod=readonly: a missing sum fails the build)."""
    binary = tmp_path_factory.mktemp("composecheck") / "composecheck"
    base = go_dir()  # the project's Go caches (modules and builds), shared with devtools/s3server.py
    env = {
        **os.environ,
        "GOPATH": str(base / "gopath"),
        "GOCACHE": str(base / "cache"),
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "CGO_ENABLED": "0",
    }
    done = subprocess.run(
        [_go(), "build", "-o", str(binary), "."], cwd=CHECKER, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"building devtools/composecheck failed:\n{done.stderr}"
    return binary


def _check(binary: Path, compose: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "-env-file", str(env_file), str(compose)], capture_output=True, text=True, timeout=120
    )


def _filled_env(tmp_path: Path, password: str) -> Path:
    """.env.example with every empty value set to ``password``, single-quoted (literal in a .env file)."""
    text = re.sub(r"^([A-Z0-9_]+)=$", lambda m: f"{m[1]}='{password}'", (ROOT / ".env.example").read_text(), flags=re.M)
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_the_example_env_fails_naming_each_secret_to_set(composecheck):
    done = _check(composecheck, ROOT / "docker-compose.yml", ROOT / ".env.example")
    assert done.returncode == 1, done.stdout[-2000:]
    assert done.stderr.startswith(f"composecheck: {ROOT / 'docker-compose.yml'}"), done.stderr
    for var in ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "OPENSEARCH_INITIAL_ADMIN_PASSWORD"):
        assert f"set {var} in .env" in done.stderr, var


def test_filled_in_env_loads_and_every_password_arrives_exactly(composecheck, tmp_path):
    done = _check(composecheck, ROOT / "docker-compose.yml", _filled_env(tmp_path, NASTY))
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert services["airflow-init"]["environment"]["ADMIN_PASSWORD"] == NASTY
    assert services["airflow-init"]["environment"]["OPENSEARCH_PASSWORD"] == NASTY
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == NASTY
    assert services["airflow-scheduler"]["environment"]["POSTGRES_PASSWORD"] == NASTY
    assert services["opensearch-security"]["environment"]["OPENSEARCH_INITIAL_ADMIN_PASSWORD"] == NASTY
    assert services["opensearch"]["environment"]["HEALTHCHECK_PASSWORD"] == NASTY
    assert services["dashboards"]["environment"]["OPENSEARCH_PASSWORD"] == NASTY


@pytest.mark.parametrize(
    ("old", "new", "fault"),
    [
        (
            "    restart: unless-stopped\n",
            "    restart: unless-stopped\n    restart_policy: always\n",
            "restart_policy",
        ),
        ("    - airflow-logs:/opt/airflow/logs\n", "    - no-such-volume:/opt/airflow/logs\n", "no-such-volume"),
    ],
    ids=["unknown-key", "undefined-volume"],
)
def test_a_broken_copy_fails_naming_the_file_and_the_fault(composecheck, tmp_path, old, new, fault):
    text = (ROOT / "docker-compose.yml").read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    done = _check(composecheck, broken, _filled_env(tmp_path, NASTY))
    assert done.returncode == 1, done.stdout[-2000:]
    assert done.stderr.startswith(f"composecheck: {broken}") and fault in done.stderr, done.stderr
