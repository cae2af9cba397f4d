"""The Airflow UI's admin user (FAB auth manager), created or brought up to date from the environment by
``airflow-init`` after the database migrations:

    ADMIN_USER=admin ADMIN_PASSWORD=... python docker/airflow_admin_user.py

The password goes from the environment straight to FAB's security manager (which stores its hash), never
onto a command line (``airflow users create --password ...`` would show it in the process list and pass it
through a shell), so any password works. ``.env`` is the source of truth: on every start the user exists,
has the Admin role and the password from ``.env``.

Environment: ``ADMIN_PASSWORD`` (required), ``ADMIN_USER`` (``admin``), ``ADMIN_EMAIL``
(``<user>@localhost``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Protocol

ADMIN_ROLE = "Admin"  # FAB's built-in role with every permission


class _User(Protocol):
    id: int
    roles: list[object]


class SecurityManager(Protocol):
    """The part of FAB's security manager (``appbuilder.sm``) this script uses."""

    def find_role(self, name: str) -> object | None: ...
    def find_user(self, username: str | None = None) -> _User | None: ...
    def add_user(
        self, username: str, first_name: str, last_name: str, email: str, role: object, password: str
    ) -> _User | None: ...
    def reset_password(self, userid: int, password: str) -> bool: ...
    def update_user(self, user: _User) -> bool | None: ...
    def sync_roles(self) -> None: ...


def ensure_admin(sm: SecurityManager, env: Mapping[str, str]) -> str:
    """Create the admin user, or give the existing one the Admin role and the password from ``env``; say which."""
    password = env.get("ADMIN_PASSWORD")
    if not password:
        raise SystemExit("ADMIN_PASSWORD is not set: set AIRFLOW_ADMIN_PASSWORD in .env")
    username = env.get("ADMIN_USER") or "admin"
    role = sm.find_role(ADMIN_ROLE)
    if role is None:  # FAB's default roles are made when its tables are first used; make them now
        sm.sync_roles()
        role = sm.find_role(ADMIN_ROLE)
    if role is None:
        raise SystemExit(f"the FAB role {ADMIN_ROLE!r} does not exist: run `airflow fab-db migrate` first")
    user = sm.find_user(username=username)
    if user is None:
        email = env.get("ADMIN_EMAIL") or f"{username}@localhost"
        if sm.add_user(username, "Admin", username, email, role, password) is None:
            raise SystemExit(f"FAB refused to create the user {username!r}")
        return f"created the admin user {username!r}"
    if not sm.reset_password(user.id, password):
        raise SystemExit(f"FAB refused to set the password of {username!r}")
    if role not in user.roles:
        user.roles.append(role)
        sm.update_user(user)
    return f"updated the admin user {username!r} (role {ADMIN_ROLE}, password from .env)"


def main() -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    @providers_configuration_loaded
    def run() -> str:
        with get_application_builder() as appbuilder:
            return ensure_admin(appbuilder.sm, os.environ)

    print(run(), file=sys.stderr)


if __name__ == "__main__":
    main()
