"""A real local Airflow deployment for seednews: PostgreSQL (Debian's packages, a private cluster on
127.0.0.1) as the metadata DB, api-server (login required: SimpleAuthManager), scheduler (LocalExecutor),
dag-processor and triggerer, the project's DAGs loaded and unpaused, the OpenSearch connection from the
environment. Run through ``./scripts/stack up|down|status|env`` (see README, "Running the Airflow stack").
``up --executor celery --workers N`` runs the CeleryExecutor instead: Redis broker, N workers
(``scripts/stack_celery.py``; docs/deploy-at-scale.md, "The Celery executor").

Everything lives in ``SEEDNEWS_STACK_HOME`` (default ``.airflow/stack``): ``airflow/`` (AIRFLOW_HOME),
``logs/``, ``run/`` (pid files), ``secrets.json`` (0600: DB, JWT, API and Fernet secrets, the admin
password, the OpenSearch connection's password) and ``stack.json`` (0600: where things are, no secrets).
The PostgreSQL data directory is under the cache folder (``/var/cache/seednews/postgres/...`` as root)
because the server runs as the ``postgres`` user, which must be able to reach it.

Environment read by ``up``: ``OPENSEARCH_URL`` / ``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD`` /
``OPENSEARCH_VERIFY_CERTS`` / ``OPENSEARCH_CA_CERTS`` (unset URL: the local dev node is started),
``SEEDNEWS_AIRFLOW_USER`` (default ``admin``), ``SEEDNEWS_AIRFLOW_PASSWORD`` (default: generated once and
printed), ``SEEDNEWS_AIRFLOW_PORT`` (default: 8080 if free, else a free port), ``SEEDNEWS_SEED_DIR``,
``SEEDNEWS_ALERT_WEBHOOK`` (the failure alerts' URL: the Airflow connection ``seednews_alerts``),
``SEEDNEWS_INDEX``, ``SEEDNEWS_MAX_QUARANTINED_PCT``, ``SEEDNEWS_REPORT_DIR``. The connection
``seednews_airflow_api`` (this api-server and its login) lets ``finalize`` make the report the run's note.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import stack_celery as celery  # scripts/ (this file's folder) is sys.path[0]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # devtools/ (the local OpenSearch node) lives in the checkout, not in the wheel
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
DAG_ID = "seednews_index"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
PG_USER = "postgres"


def say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ paths and state
def stack_home() -> Path:
    return Path(os.environ.get("SEEDNEWS_STACK_HOME") or ROOT / ".airflow" / "stack").resolve()


def cache_dir() -> Path:
    if os.environ.get("SEEDNEWS_CACHE_DIR"):
        return Path(os.environ["SEEDNEWS_CACHE_DIR"])
    return Path("/var/cache/seednews") if os.geteuid() == 0 else Path.home() / ".cache" / "seednews"


def pg_dir(home: Path) -> Path:
    return cache_dir() / "postgres" / hashlib.sha256(str(home).encode()).hexdigest()[:12]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


STATE_MODE = 0o600
"""``stack.json``'s mode: it holds no secret, but who runs what where is nobody else's business either."""


def _write_json(path: Path, data: dict, mode: int = 0o644) -> None:
    """Write ``path`` atomically, the file *created* with ``mode``: a fresh temporary file (a leftover
    one, perhaps wider open, is removed first; ``O_EXCL``), never readable by others in between."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    tmp.replace(path)


def write_state(home: Path, state: dict) -> None:
    """``stack.json``, created :data:`STATE_MODE`. The OpenSearch connection's password is not in it:
    :func:`keep_connection_password` moves it to ``secrets.json`` and :func:`airflow_env` puts it back."""
    connection = state.get("connection")
    if isinstance(connection, dict) and "password" in connection:
        raise ValueError("stack.json would hold the OpenSearch password: keep_connection_password first")
    _write_json(home / "stack.json", state, STATE_MODE)


def free_port(preferred: int | None = None) -> int:
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ------------------------------------------------------------------ PostgreSQL
def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        if os.geteuid() != 0:
            raise SystemExit("PostgreSQL server binaries are missing: apt-get install -y postgresql")
        say("installing PostgreSQL (apt-get install -y postgresql)")
        apt_install("postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent


def apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, check=True, capture_output=True)


def _as_pg(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _chown_pg(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def pg_up(home: Path, secret: dict, state: dict) -> int:
    bindir = pg_bindir()
    base = pg_dir(home)
    data, sock = base / "data", base / "sock"
    for d in (base.parent.parent, base.parent, base):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
    if not (data / "PG_VERSION").exists():
        say(f"creating a private PostgreSQL cluster in {data}")
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        _chown_pg(data)
        pwfile = base / "pw.tmp"
        pwfile.write_text(secret["pg_superuser_password"] + "\n")
        _chown_pg(pwfile)
        os.chmod(pwfile, 0o600)
        out = _as_pg(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--pwfile",
                str(pwfile),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        pwfile.unlink()
        if out.returncode:
            raise SystemExit(f"initdb failed: {out.stderr[-2000:]}")
    sock.mkdir(exist_ok=True)
    _chown_pg(sock)
    (base / "postgres.log").touch()
    _chown_pg(base / "postgres.log")
    port = state.get("pg_port")
    running = _as_pg([str(bindir / "pg_ctl"), "-D", str(data), "status"]).returncode == 0
    if not running:
        if not port or port_open(port):
            port = free_port()
        say(f"starting PostgreSQL on 127.0.0.1:{port}")
        out = _as_pg(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {sock} -c listen_addresses=127.0.0.1",
                "start",
            ]
        )
        if out.returncode:
            log = (
                (base / "postgres.log").read_text(errors="replace")[-2000:] if (base / "postgres.log").exists() else ""
            )
            raise SystemExit(f"PostgreSQL did not start: {out.stderr[-1000:]}\n{log}")
    state.update(pg_port=port, pg_data=str(data), pg_bindir=str(bindir), pg_socket=str(sock))
    # the airflow role and database (idempotent)
    psql = [
        str(bindir / "psql"),
        "-h",
        str(sock),
        "-p",
        str(port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-qAt",
    ]
    pw_sql = secret["pg_airflow_password"].replace("'", "''")
    sql = (
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='airflow') THEN "
        f"CREATE ROLE airflow LOGIN PASSWORD '{pw_sql}'; END IF; END$$;"
    )
    for stmt in (sql,):
        out = _as_pg([*psql, "-c", stmt])
        if out.returncode:
            raise SystemExit(f"PostgreSQL setup failed: {out.stderr[-1000:]}")
    if _as_pg([*psql, "-c", "SELECT 1 FROM pg_database WHERE datname='airflow'"]).stdout.strip() != "1":
        out = _as_pg([*psql, "-c", "CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8'"])
        if out.returncode:
            raise SystemExit(f"PostgreSQL setup failed: {out.stderr[-1000:]}")
    return port


def pg_down(home: Path, state: dict) -> None:
    data = pg_dir(home) / "data"
    if not (data / "PG_VERSION").exists():
        return
    bindir = Path(state.get("pg_bindir") or pg_bindir())
    if _as_pg([str(bindir / "pg_ctl"), "-D", str(data), "status"]).returncode == 0:
        say("stopping PostgreSQL")
        _as_pg([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])


# ------------------------------------------------------------------ secrets and environment
def load_secrets(home: Path) -> tuple[dict, bool]:
    path = home / "secrets.json"
    secret = _read_json(path)
    created = False
    from cryptography.fernet import Fernet

    defaults = {
        "pg_superuser_password": lambda: secrets.token_urlsafe(24),
        "pg_airflow_password": lambda: secrets.token_urlsafe(24),
        "jwt_secret": lambda: secrets.token_urlsafe(48),
        "api_secret_key": lambda: secrets.token_urlsafe(48),
        "fernet_key": lambda: Fernet.generate_key().decode(),
        "redis_password": lambda: secrets.token_urlsafe(24),
        "admin_user": lambda: os.environ.get("SEEDNEWS_AIRFLOW_USER") or "admin",
        "admin_password": lambda: os.environ.get("SEEDNEWS_AIRFLOW_PASSWORD") or secrets.token_urlsafe(12),
    }
    for key, make in defaults.items():
        if key not in secret:
            secret[key] = make()
            created = created or key == "admin_password"
    if (
        os.environ.get("SEEDNEWS_AIRFLOW_PASSWORD")
        and secret["admin_password"] != os.environ["SEEDNEWS_AIRFLOW_PASSWORD"]
    ):
        secret["admin_password"] = os.environ["SEEDNEWS_AIRFLOW_PASSWORD"]
    _write_json(path, secret, 0o600)
    return secret, created


def keep_connection_password(home: Path, secret: dict, connection: dict) -> dict:
    """``connection`` without its password, which goes to ``secrets.json`` (0600) instead."""
    connection = dict(connection)
    password = connection.pop("password", None)
    if secret.get("opensearch_password") != password:
        if password is None:
            secret.pop("opensearch_password", None)
        else:
            secret["opensearch_password"] = password
        _write_json(home / "secrets.json", secret, 0o600)
    return connection


def opensearch_connection(progress) -> tuple[str, dict]:
    """The ``seednews_opensearch`` connection (type ``opensearch``) as Airflow's JSON env form."""
    sys.path.insert(0, str(ROOT))
    from pipeline.config import Settings

    if not os.environ.get("OPENSEARCH_URL"):
        from devtools import localnode

        progress("no OPENSEARCH_URL: starting (or reusing) the local OpenSearch dev node")
        os.environ["OPENSEARCH_URL"] = localnode.ensure_running(progress=progress).url
    s = Settings.from_env()
    from urllib.parse import urlsplit

    nodes = [urlsplit(u) for u in s.opensearch_urls]
    parts = nodes[0]  # a cluster (several URLs): one scheme and prefix (Settings checks), hosts listed
    extra = {"use_ssl": parts.scheme == "https", "verify_certs": s.verify_certs}
    if s.ca_certs:
        extra["ca_certs"] = s.ca_certs
    if parts.path.strip("/"):
        extra["url_prefix"] = parts.path.strip("/")
    host = parts.hostname if len(nodes) == 1 else ",".join(f"{n.hostname}:{n.port or 9200}" for n in nodes)
    conn = {"conn_type": "opensearch", "host": host, "port": parts.port or 9200, "extra": extra}
    if s.username:
        conn.update(login=s.username, password=s.password or "")
    return s.display_url, conn


def airflow_env(home: Path, secret: dict, state: dict) -> dict[str, str]:
    af = home / "airflow"
    port = state["api_port"]
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "AIRFLOW_HOME": str(af),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__FERNET_KEY": secret["fernet_key"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://airflow:{secret['pg_airflow_password']}@127.0.0.1:{state['pg_port']}/airflow"
        ),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{secret['admin_user']}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(af / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__SECRET_KEY": secret["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt_secret"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # as in docker-compose.yml: task hand-offs wait up to 0.5 s, not 1 s (docs/benchmarks.md)
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "tasks"),
        "AIRFLOW_CONN_SEEDNEWS_OPENSEARCH": json.dumps(
            {
                **state["connection"],
                **({"password": secret["opensearch_password"]} if "opensearch_password" in secret else {}),
            }
        ),
        "AIRFLOW_CONN_SEEDNEWS_AIRFLOW_API": json.dumps(
            {
                "conn_type": "http",
                "host": f"http://127.0.0.1:{port}",
                "login": secret["admin_user"],
                "password": secret["admin_password"],
            }
        ),
        "SEEDNEWS_REPORT_DIR": os.environ.get("SEEDNEWS_REPORT_DIR") or str(home / "reports"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    webhook = os.environ.get("SEEDNEWS_ALERT_WEBHOOK")
    if webhook:  # the failure alerts' connection (type http, host the whole URL)
        env["AIRFLOW_CONN_SEEDNEWS_ALERTS"] = json.dumps({"conn_type": "http", "host": webhook})
    # the connection carries OpenSearch: keep the env fallback from pointing somewhere else
    for key in ("OPENSEARCH_URL", "OPENSEARCH_USER", "OPENSEARCH_PASSWORD"):
        env.pop(key, None)
    if state.get("executor") == "celery":
        env = celery.celery_env(env, secret, state)
    return env


# ------------------------------------------------------------------ processes
def _pid(home: Path, name: str) -> int | None:
    try:
        pid = int((home / "run" / f"{name}.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_service(home: Path, name: str, env: dict) -> int:
    pid = _pid(home, name)
    if pid:
        return pid
    (home / "run").mkdir(exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    with open(home / "logs" / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        p = subprocess.Popen(
            [AIRFLOW, name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(home),
        )
    (home / "run" / f"{name}.pid").write_text(str(p.pid))
    return p.pid


def stop_service(home: Path, name: str, timeout: float = 30) -> None:
    pid = _pid(home, name)
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.3)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    (home / "run" / f"{name}.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------------ REST
def token(base: str, user: str, password: str) -> str:
    req = urllib.request.Request(
        f"{base}/auth/token",
        method="POST",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def warm_execution_api(base: str) -> float:
    """The api-server builds its Execution API (the sub-application every task reports to) on the first
    request that reaches it: 4.4-4.6 s measured here, which the first task after a start waited for in its
    ``/run`` call (a 10,000-file run's first task took 6.3 s instead of 1.2-2 s). One unauthenticated health
    request pays it at start-up instead. Returns the seconds it took."""
    t0 = time.monotonic()
    with urllib.request.urlopen(f"{base}/execution/health", timeout=120) as resp:
        resp.read()
    return time.monotonic() - t0


def api(base: str, path: str, tok: str, method: str = "GET", body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {tok}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def wait_for(predicate, timeout: float, what: str, home: Path):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 -- not up yet; shown in the timeout message
            last = exc
        for name in SERVICES:
            if not _pid(home, name):
                tail = (home / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"airflow {name} exited while waiting for {what}; its log ends:\n{tail}")
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}); logs in {home / 'logs'}")


# ------------------------------------------------------------------ commands
def cmd_up(args) -> int:
    t0 = time.monotonic()
    home = stack_home()
    home.mkdir(parents=True, exist_ok=True)
    (home / "airflow").mkdir(exist_ok=True)
    state = _read_json(home / "stack.json")
    secret, _new_password = load_secrets(home)
    running = [n for n in SERVICES if _pid(home, n)]
    executor = args.executor or state.get("executor") or "local"
    if running and executor != (state.get("executor") or "local"):
        raise SystemExit(f"the stack runs the {state.get('executor') or 'local'} executor: ./scripts/stack down first")
    state.update(executor=executor)
    if executor == "celery":
        state.update(
            workers=args.workers or state.get("workers") or celery.DEFAULT_WORKERS,
            concurrency=args.concurrency or state.get("concurrency") or celery.DEFAULT_CONCURRENCY,
        )
    progress = lambda m: say(m)  # noqa: E731
    display_url, connection = opensearch_connection(progress)
    state["connection"] = keep_connection_password(home, secret, connection)
    pg_up(home, secret, state)
    if executor == "celery":
        celery.redis_up(
            home,
            secret,
            state,
            say=say,
            apt_install=apt_install,
            free_port=free_port,
            port_open=port_open,
            pid_of=_pid,
            cache=cache_dir(),
        )
    if not running:
        wanted = int(os.environ.get("SEEDNEWS_AIRFLOW_PORT") or state.get("api_port") or 8080)
        state["api_port"] = wanted if not port_open(wanted) else free_port()
    # the passwords file SimpleAuthManager reads: the admin's password, set by us (not generated per start)
    _write_json(home / "airflow" / "passwords.json", {secret["admin_user"]: secret["admin_password"]}, 0o600)
    env = airflow_env(home, secret, state)
    write_state(home, state)
    say("migrating the Airflow metadata DB (PostgreSQL)")
    out = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, cwd=str(home))
    if out.returncode:
        raise SystemExit(f"airflow db migrate failed:\n{(out.stdout + out.stderr)[-3000:]}")
    for name in SERVICES:
        start_service(home, name, env)
    workers = celery.worker_names(int(state["workers"])) if executor == "celery" else []
    base = f"http://127.0.0.1:{state['api_port']}"
    state.update(
        base_url=base,
        user=secret["admin_user"],
        home=str(home),
        airflow_home=str(home / "airflow"),
        secrets_file=str(home / "secrets.json"),
        opensearch=display_url,
        pids={n: _pid(home, n) for n in (*SERVICES, *celery.services(state))},
    )
    write_state(home, state)
    say(f"waiting for the api-server at {base}")
    tok = wait_for(lambda: token(base, secret["admin_user"], secret["admin_password"]), 180, "the api-server", home)
    say(f"the Execution API answered in {warm_execution_api(base):.1f} s (built on its first request)")
    for name in workers:  # only now: a task a worker takes needs the api-server (the Execution API) at once
        celery.start_worker(home, name, env, AIRFLOW, int(state["concurrency"]), _pid)
    state["pids"] = {n: _pid(home, n) for n in (*SERVICES, *celery.services(state))}
    say(f"waiting for the dag-processor to load {DAG_ID}")
    wait_for(lambda: api(base, f"/api/v2/dags/{DAG_ID}", tok).get("dag_id") == DAG_ID, 180, f"DAG {DAG_ID}", home)
    dag = api(base, f"/api/v2/dags/{DAG_ID}", tok, "PATCH", {"is_paused": False})  # deployments unpause it
    if dag.get("is_paused"):
        raise SystemExit(f"could not unpause {DAG_ID}")
    errors = api(base, "/api/v2/importErrors", tok).get("import_errors") or []
    if errors:
        say(f"DAG import errors: {[e.get('filename') for e in errors]}")
    for name in workers:
        say(f"waiting for Celery worker {name}")
        wait_for(
            lambda n=name: (
                _pid(home, f"celery-{n}") and f"{n}@" in _worker_log(home, n) and " ready." in _worker_log(home, n)
            ),
            180,
            f"Celery worker {name}",
            home,
        )
    state["started_in_s"] = round(time.monotonic() - t0, 1)
    write_state(home, state)
    print(f"Airflow UI:   {base}  (user {secret['admin_user']!r}; password in {home / 'secrets.json'})")
    if not secret.get("password_shown") and not os.environ.get("SEEDNEWS_AIRFLOW_PASSWORD"):
        print(
            f"              generated password for {secret['admin_user']!r}: {secret['admin_password']}  (shown once)"
        )
        secret["password_shown"] = True
        _write_json(home / "secrets.json", secret, 0o600)
    first = dag.get("next_dagrun_run_after") or "the next 02:00 UTC"
    print(f"DAG:          {DAG_ID} (unpaused; nightly 02:00 UTC; first run {first}: nothing runs now, Trigger does)")
    print(f"OpenSearch:   {display_url} (connection seednews_opensearch, type opensearch)")
    print(f"PostgreSQL:   127.0.0.1:{state['pg_port']} (data {state['pg_data']})")
    if executor == "celery":
        print(
            f"Executor:     CeleryExecutor: Redis broker 127.0.0.1:{state['redis_port']}, result backend PostgreSQL, "
            f"workers {', '.join(workers)} (concurrency {state['concurrency']} each; dirs {home / 'workers'})"
        )
    reports = (
        home / "workers" / "<worker>" / "reports"
        if workers and not os.environ.get("SEEDNEWS_REPORT_DIR")
        else env["SEEDNEWS_REPORT_DIR"]
    )
    print(f"Logs:         {home / 'logs'}    reports: {reports}")
    print(f"Started in {state['started_in_s']} s. Stop: ./scripts/stack down")
    return 0


def _worker_log(home: Path, name: str) -> str:
    try:
        return (home / "logs" / f"celery-{name}.log").read_text(errors="replace")
    except OSError:
        return ""


def cmd_down(args) -> int:
    home = stack_home()
    state = _read_json(home / "stack.json")
    extra = celery.services(state)  # redis first, then the workers
    for name in reversed(extra[1:]):
        if _pid(home, name):
            say(f"stopping airflow {name}")
        stop_service(home, name)
    for name in reversed(SERVICES):
        if _pid(home, name):
            say(f"stopping airflow {name}")
        stop_service(home, name)
    if extra:
        stop_service(home, "redis")
    pg_down(home, state)
    if args.purge:
        say(f"removing {home} and {pg_dir(home)}")
        shutil.rmtree(pg_dir(home), ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    return 0


def cmd_status(args) -> int:
    home = stack_home()
    state = _read_json(home / "stack.json")
    up = {n: _pid(home, n) for n in (*SERVICES, *celery.services(state))}
    for n, pid in up.items():
        print(f"{n:14s} {'running pid ' + str(pid) if pid else 'stopped'}")
    pg_port = state.get("pg_port")
    print(f"{'postgres':14s} {f'listening on 127.0.0.1:{pg_port}' if pg_port and port_open(pg_port) else 'stopped'}")
    if state.get("base_url"):
        print(f"UI             {state['base_url']}")
    return 0 if all(up.values()) else 3


def cmd_env(args) -> int:
    """Shell exports to run the airflow CLI against this stack: eval "$(./scripts/stack env)"."""
    home = stack_home()
    state = _read_json(home / "stack.json")
    if not state.get("api_port"):
        raise SystemExit("the stack was never started: ./scripts/stack up")
    secret, _ = load_secrets(home)
    env = airflow_env(home, secret, state)
    # PYTHONPATH: a Celery stack's hostname_callable (scripts/stack_celery.py)
    for key in sorted(
        k
        for k in env
        if k.startswith(("AIRFLOW", "SEEDNEWS")) or (k == "PYTHONPATH" and state.get("executor") == "celery")
    ):
        print(f"export {key}={shlex_quote(env[key])}")
    return 0


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="./scripts/stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    u = sub.add_parser("up", help="install what is missing, start PostgreSQL and Airflow, unpause the DAG")
    u.add_argument(
        "--executor",
        choices=("local", "celery"),
        help="LocalExecutor (default) or CeleryExecutor "
        "(Redis broker, separate worker processes; seeds then from s3://)",
    )
    u.add_argument("--workers", type=int, help=f"Celery workers (default {celery.DEFAULT_WORKERS})")
    u.add_argument(
        "--concurrency", type=int, help=f"task slots per Celery worker (default {celery.DEFAULT_CONCURRENCY})"
    )
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("down", help="stop Airflow and PostgreSQL")
    d.add_argument("--purge", action="store_true", help="also delete the metadata DB, secrets and logs")
    d.set_defaults(func=cmd_down)
    sub.add_parser("status", help="what is running").set_defaults(func=cmd_status)
    sub.add_parser("env", help="shell exports for the airflow CLI").set_defaults(func=cmd_env)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
