"""The CeleryExecutor mode of the local stack (``./scripts/stack up --executor celery --workers N``): a private
Redis (Debian's ``redis-server``) on 127.0.0.1 as the broker, PostgreSQL (the metadata DB) as the Celery result
backend, and N ``airflow celery worker`` processes that share nothing but the network: each has its own working
directory, HOME, temp dir and ``--celery-hostname``, and records its own name as the task instances' ``hostname``.

Seeds must then come from object storage (``s3://bucket/prefix``): no seed folder is shared between workers.
Task logs are the one thing still written to the stack's log folder (so the UI shows them without each worker
serving its logs on a port of its own); a real deployment uses Airflow's remote logging instead.

Environment read by ``up``: ``SEEDNEWS_CELERY_*`` (passed to the workers as Airflow's ``[celery]`` settings are)
and the usual ``AIRFLOW__*`` overrides, e.g. the heartbeat timeouts the tests shorten.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REDIS_PACKAGE = "redis-server"
REDIS_CANDIDATES = ("/usr/bin/redis-server", "/usr/sbin/redis-server")
REDIS_START_TIMEOUT = 20.0
REDIS_USER = "seednews-redis"
"""Run as root, the stack starts Redis as this unprivileged system user (created when missing, the way
``devtools.localnode`` creates ``seednews-os`` for OpenSearch): Redis holds no file of the stack's, reads
its configuration (with the password) on stdin from a descriptor root opened, and works in an empty,
root-owned directory it cannot write to (nothing is persisted anyway)."""
WORKER_ENV_NAME = "SEEDNEWS_WORKER_NAME"  # what worker_hostname() returns inside a worker
HOSTNAME_CALLABLE = "stack_celery.worker_hostname"
DEFAULT_WORKERS = 2
DEFAULT_CONCURRENCY = 2  # task slots per worker; 2 cores here, so 2 workers x 2 slots already oversubscribe


def worker_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` in the workers: the worker's own name (several workers share one
    machine here, and each task instance must say which one ran it). Elsewhere: the machine's FQDN."""
    import socket

    return os.environ.get(WORKER_ENV_NAME) or socket.getfqdn()


def worker_names(n: int) -> list[str]:
    return [f"worker-{i}" for i in range(1, n + 1)]


# ------------------------------------------------------------------ Redis
def redis_binary(say, apt_install) -> str:
    for path in REDIS_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    if shutil.which("redis-server"):
        return shutil.which("redis-server")
    if os.geteuid() != 0:
        raise SystemExit(f"Redis is missing: apt-get install -y {REDIS_PACKAGE}")
    say(f"installing Redis (apt-get install -y {REDIS_PACKAGE})")
    apt_install(REDIS_PACKAGE)
    for path in REDIS_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    raise SystemExit(f"apt-get installed {REDIS_PACKAGE} but no redis-server binary was found")


def redis_identity() -> tuple[int, int] | None:
    """``(uid, gid)`` Redis runs as: :data:`REDIS_USER` (created if missing) when we are root, else ``None``
    (the current user)."""
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(REDIS_USER)
    except KeyError:
        flags = ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        result = subprocess.run(
            ["useradd", *flags, "--shell", "/usr/sbin/nologin", REDIS_USER], capture_output=True, text=True
        )
        try:  # a concurrent start may have created it in the meantime
            entry = pwd.getpwnam(REDIS_USER)
        except KeyError:
            raise SystemExit(f"could not create system user {REDIS_USER!r}: {result.stderr.strip()}") from None
    return entry.pw_uid, entry.pw_gid


def redis_workdir(cache: Path) -> Path:
    """Redis's ``dir``: empty, owned by whoever starts the stack, open to all for reading only (the Redis user
    must reach it; ``/var/cache/seednews`` as root, as for PostgreSQL's data)."""
    workdir = cache / "redis"
    workdir.mkdir(mode=0o755, parents=True, exist_ok=True)
    return workdir


def redis_command(binary: str) -> list[str]:
    return [binary, "-"]  # the configuration comes on stdin


def redis_up(
    home: Path, secret: dict, state: dict, *, say, apt_install, free_port, port_open, pid_of, cache: Path
) -> int:
    """Start (or reuse) the stack's own Redis: loopback only, password required, nothing persisted (the broker
    only holds queued task messages; Airflow's DB is the truth), never as root (:data:`REDIS_USER`)."""
    binary = redis_binary(say, apt_install)
    base = home / "redis"
    base.mkdir(mode=0o700, exist_ok=True)
    port = state.get("redis_port")
    if pid_of(home, "redis") and port and port_open(port):
        return port
    port = free_port() if not port or port_open(port) else port
    conf = base / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the password
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {secret['redis_password']}\n"
            f'dir {redis_workdir(cache)}\nsave ""\nappendonly no\ndaemonize no\nlogfile ""\n'
        )
    ident = redis_identity()
    user = {"user": ident[0], "group": ident[1], "extra_groups": []} if ident else {}
    (home / "run").mkdir(exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    say(f"starting Redis (broker) on 127.0.0.1:{port}" + (f" as {REDIS_USER}" if ident else ""))
    # the child keeps its own copies of the descriptors: the log, and the configuration on stdin
    with open(home / "logs" / "redis.log", "ab") as log, open(conf, "rb") as config:
        p = subprocess.Popen(  # type: ignore[call-overload]
            redis_command(binary),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=config,
            start_new_session=True,
            cwd=str(base),
            **user,
        )
    (home / "run" / "redis.pid").write_text(str(p.pid))
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while not port_open(port):
        if p.poll() is not None or time.monotonic() > deadline:
            tail = (home / "logs" / "redis.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"Redis did not start on 127.0.0.1:{port}; its log ends:\n{tail}")
        time.sleep(0.2)
    state["redis_port"] = port
    return port


# ------------------------------------------------------------------ the executor's settings
def celery_env(env: dict[str, str], secret: dict, state: dict) -> dict[str, str]:
    """Airflow's settings for the CeleryExecutor on top of the stack's ``env`` (every service gets them)."""
    pg = f"airflow:{secret['pg_airflow_password']}@127.0.0.1:{state['pg_port']}/airflow"
    out = {
        **env,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{secret['redis_password']}@127.0.0.1:{state['redis_port']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(state.get("concurrency") or DEFAULT_CONCURRENCY),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
    }
    here = str(Path(__file__).resolve().parent)
    out["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return out


def worker_env(env: dict[str, str], home: Path, name: str) -> tuple[dict[str, str], Path]:
    """A worker's private corner: its own working directory, HOME, temp dir and name."""
    wdir = home / "workers" / name
    for d in (wdir, wdir / "home", wdir / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    out = {
        **env,
        "HOME": str(wdir / "home"),
        "TMPDIR": str(wdir / "tmp"),
        WORKER_ENV_NAME: name,
        "SEEDNEWS_REPORT_DIR": os.environ.get("SEEDNEWS_REPORT_DIR") or str(wdir / "reports"),
    }
    return out, wdir


def worker_command(airflow: str, name: str, concurrency: int) -> list[str]:
    # --skip-serve-logs: the workers write task logs to the stack's log folder (see the module doc)
    return [
        airflow,
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@%h",
        "--concurrency",
        str(concurrency),
        "--skip-serve-logs",
    ]


def start_worker(home: Path, name: str, env: dict[str, str], airflow: str, concurrency: int, pid_of) -> int:
    service = f"celery-{name}"
    pid = pid_of(home, service)
    if pid:
        return pid
    wenv, wdir = worker_env(env, home, name)
    (home / "run").mkdir(exist_ok=True)
    with open(home / "logs" / f"{service}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        p = subprocess.Popen(
            worker_command(airflow, name, concurrency),
            env=wenv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(wdir),
        )
    (home / "run" / f"{service}.pid").write_text(str(p.pid))
    return p.pid


def services(state: dict) -> tuple[str, ...]:
    """The extra services of a Celery stack, in start order (stopped in reverse)."""
    if state.get("executor") != "celery":
        return ()
    return ("redis", *(f"celery-{n}" for n in worker_names(int(state.get("workers") or DEFAULT_WORKERS))))


if __name__ == "__main__":  # pragma: no cover - a helper module of scripts/stack.py
    sys.exit("run ./scripts/stack up --executor celery")
