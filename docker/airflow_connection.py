"""The compose stack's connections with a secret in them, built from the environment so that any
password works: the pipeline's Airflow connections (a file for ``airflow connections import``, written
once by ``airflow-init``) and Airflow's own database URL (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD``).

The file holds ``seednews_opensearch`` (OpenSearch), ``seednews_airflow_api`` (the api-server's URL and the
UI login: ``finalize`` makes the run's report the run's note through the REST API) and, when
``SEEDNEWS_ALERT_WEBHOOK`` is set, ``seednews_alerts`` (type ``http``, its host the whole webhook URL:
the failure alerts' ``HttpNotifier``).

The password goes through ``json.dump``, so any password works (``"``, ``\\``, ``#``, ``@``, ``%``, ``$``,
quotes, non-ASCII); pasting it into a JSON string inside the compose file broke on the first ``"`` or
``\\``. The connection then lives in Airflow's metadata database (encrypted with the Fernet key), and no
Airflow service but ``airflow-init`` sees the password in its environment.

    OPENSEARCH_PASSWORD=... python docker/airflow_connection.py /tmp/connections.json
    airflow connections import --overwrite /tmp/connections.json
    POSTGRES_PASSWORD=... python docker/airflow_connection.py --db-url

Environment: ``OPENSEARCH_PASSWORD`` (required), ``OPENSEARCH_USER`` (``admin``), ``OPENSEARCH_HOST``
(``opensearch``), ``OPENSEARCH_PORT`` (9200), ``OPENSEARCH_CA_CERTS`` (``/certs/ca.pem``); for the database
URL ``POSTGRES_PASSWORD`` (required), ``POSTGRES_USER`` (``airflow``), ``POSTGRES_HOST`` (``postgres``),
``POSTGRES_DB`` (``airflow``). The password is percent-encoded in the URL (``@``, ``/``, ``#``, ``%`` ...).
For the API connection ``ADMIN_PASSWORD`` (required), ``ADMIN_USER`` (``admin``), ``AIRFLOW_API_URL``
(``http://airflow-apiserver:8080``); for the alerts ``SEEDNEWS_ALERT_WEBHOOK`` (empty: no connection).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

CONN_ID = "seednews_opensearch"  # the DAG's connection id (dags/seednews_index.py CONN_ID)
API_CONN_ID = "seednews_airflow_api"  # dags/seednews_notify.py API_CONN_ID
ALERTS_CONN_ID = "seednews_alerts"  # dags/seednews_notify.py ALERTS_CONN_ID
DEFAULT_API_URL = "http://airflow-apiserver:8080"


def connection(env: Mapping[str, str]) -> dict[str, Any]:
    """The connection, in the shape ``airflow connections export`` writes (``extra`` as a JSON string)."""
    password = env.get("OPENSEARCH_PASSWORD")
    if not password:
        raise SystemExit("OPENSEARCH_PASSWORD is not set: the OpenSearch connection needs the admin password")
    extra = {"use_ssl": True, "verify_certs": True, "ca_certs": env.get("OPENSEARCH_CA_CERTS") or "/certs/ca.pem"}
    return {
        "conn_type": "opensearch",
        "host": env.get("OPENSEARCH_HOST") or "opensearch",
        "port": int(env.get("OPENSEARCH_PORT") or 9200),
        "login": env.get("OPENSEARCH_USER") or "admin",
        "password": password,
        "extra": json.dumps(extra),
    }


def api_connection(env: Mapping[str, str]) -> dict[str, Any]:
    """The api-server for the run notes: its URL inside the compose network and the UI login."""
    password = env.get("ADMIN_PASSWORD")
    if not password:
        raise SystemExit("ADMIN_PASSWORD is not set: the run notes need the Airflow UI login")
    return {
        "conn_type": "http",
        "host": env.get("AIRFLOW_API_URL") or DEFAULT_API_URL,
        "login": env.get("ADMIN_USER") or "admin",
        "password": password,
    }


def connections(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Every connection ``airflow-init`` imports; the alerts' only when a webhook URL is set."""
    out = {CONN_ID: connection(env), API_CONN_ID: api_connection(env)}
    if env.get("SEEDNEWS_ALERT_WEBHOOK"):
        out[ALERTS_CONN_ID] = {"conn_type": "http", "host": env["SEEDNEWS_ALERT_WEBHOOK"]}
    return out


def db_url(env: Mapping[str, str]) -> str:
    """Airflow's metadata database URL, the password percent-encoded (SQLAlchemy decodes it)."""
    password = env.get("POSTGRES_PASSWORD")
    if not password:
        raise SystemExit("POSTGRES_PASSWORD is not set: Airflow's database URL needs it")
    user = quote(env.get("POSTGRES_USER") or "airflow", safe="")
    host, db = env.get("POSTGRES_HOST") or "postgres", env.get("POSTGRES_DB") or "airflow"
    return f"postgresql+psycopg2://{user}:{quote(password, safe='')}@{host}/{db}"


def main(argv: list[str]) -> int:
    if argv == ["--db-url"]:
        print(db_url(os.environ))
        return 0
    if len(argv) != 1:
        raise SystemExit("usage: airflow_connection.py FILE | --db-url")
    os.umask(0o077)  # the file holds a password: readable by its owner only
    with open(argv[0], "w", encoding="utf-8") as f:
        json.dump(connections(os.environ), f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
