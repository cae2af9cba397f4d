"""Shared fixtures. Integration tests use a REAL OpenSearch node: ``devtools.localnode`` starts one on
127.0.0.1 (or uses ``OPENSEARCH_URL`` if set). One node serves the whole session; every test gets its
own index base name, so tests never see each other's data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLE_SEEDS = ROOT / "examples" / "seeds"
DAGS = ROOT / "dags"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="session")
def opensearch_node():
    from devtools import localnode

    node = localnode.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def opensearch_url(opensearch_node) -> str:
    return opensearch_node.url


@pytest.fixture
def settings(opensearch_url):
    from pipeline.config import Settings

    return Settings(opensearch_url=opensearch_url, index_base=f"test-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def client(settings):
    from pipeline.stores.client import make_client

    c = make_client(settings)
    yield c
    c.indices.delete(index=f"{settings.index_base}*", ignore_unavailable=True, expand_wildcards="all")
    c.indices.delete_index_template(name=settings.index_base, ignore=[404])
    c.close()


@pytest.fixture
def seed_dir(tmp_path) -> Path:
    """A private copy of the two sample seeds."""
    d = tmp_path / "seeds"
    shutil.copytree(SAMPLE_SEEDS, d)
    return d


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (SeaweedFS, ``devtools.s3server``) on 127.0.0.1 for the session:
    built into the cache on first use (minutes, once per machine), started with random keys."""
    pytest.importorskip(
        "boto3",
        reason="boto3 is not installed: the s3 extra (pip install -e '.[s3]') is not "
        "in requirements.lock yet, so the object-storage tests cannot run",
    )
    from devtools import s3server

    server = s3server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env
