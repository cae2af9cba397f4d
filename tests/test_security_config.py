"""The compose's OpenSearch security, for real: a node with the security plugin started with exactly the
``plugins.security.*`` settings of docker-compose.yml's ``opensearch`` service and exactly the files its
set-up makes (docker/make_certs.py, then docker/opensearch_security.sh running the plugin's own hash tool
on a hostile ``OPENSEARCH_INITIAL_ADMIN_PASSWORD``), no demo installer, no demo file. Then: HTTPS verified
against the stack's CA works, the .env password logs in, a wrong or missing one gets 401, plain HTTP and
another CA are refused, and the pipeline indexes the samples through it.

The node is OpenSearch 3.4.0 with the security plugin 3.4.0.0 (devtools/securenode.py): Maven Central
has no 3.6.0 security plugin, and the configuration format is the same across 3.x (see that module).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PASSWORD = 'p"a\\ss#@%w0rd!'
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OPENSEARCH = COMPOSE["services"]["opensearch"]
#: Where the compose mounts each volume in the opensearch container, below its config/ folder.
CONFIG_DIR = "/usr/share/opensearch/config/"


def _security_settings() -> dict[str, object]:
    env = OPENSEARCH["environment"]
    return {k: str(v) for k, v in env.items() if k.startswith("plugins.security.")}


def _mounts() -> dict[str, str]:
    """Volume name -> folder below config/ where the opensearch service mounts it."""
    found = {}
    for spec in OPENSEARCH["volumes"]:
        volume, target = spec.split(":")[:2]
        if target.startswith(CONFIG_DIR):
            found[volume] = target.removeprefix(CONFIG_DIR)
    return found


def _setup(tmp: Path) -> dict[str, Path]:
    """Run the compose set-up (the certs and opensearch-security services' commands) into one folder per
    volume; return volume name -> folder."""
    from devtools import localnode as ln
    from devtools import securenode

    dist = securenode.ensure_installed()
    volumes = {"certs": tmp / "certs", "opensearch-security": tmp / "opensearch-security"}
    certs_cmd = COMPOSE["services"]["certs"]["entrypoint"]
    assert certs_cmd[-2:] == ["/certs", "/opensearch-security"]
    subprocess.run([sys.executable, str(ROOT / "docker" / "make_certs.py"), *map(str, volumes.values())], check=True)
    security_cmd = COMPOSE["services"]["opensearch-security"]["entrypoint"]
    assert security_cmd[1:5] == [
        "/opt/seednews-docker/opensearch_security.sh",
        "/usr/share/opensearch/" + securenode.HASH_TOOL,
        "/opt/seednews-docker/opensearch-security",
        "/opensearch-security",
    ]
    env = {
        "PATH": os.environ["PATH"],
        "OPENSEARCH_JAVA_HOME": str(ln.java_home()),
        "OPENSEARCH_INITIAL_ADMIN_PASSWORD": PASSWORD,
    }
    done = subprocess.run(
        [
            "bash",
            str(ROOT / "docker" / "opensearch_security.sh"),
            str(dist / securenode.HASH_TOOL),
            str(ROOT / "docker" / "opensearch-security"),
            str(volumes["opensearch-security"]),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert PASSWORD not in done.stdout + done.stderr
    return volumes


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    from devtools import securenode

    tmp = tmp_path_factory.mktemp("security")
    volumes = _setup(tmp)
    mounts = _mounts()
    config = {
        f"{mounts[volume]}/{f.name}": f.read_text()
        for volume, folder in volumes.items()
        for f in sorted(folder.iterdir())
    }
    ca = volumes["certs"] / "ca.pem"
    node = securenode.start(config, _security_settings(), ca, "admin", PASSWORD)
    try:
        yield {"url": node.url, "ca": ca, "volumes": volumes, "node": node}
    finally:
        node.stop()


def test_the_set_up_makes_every_file_the_compose_mounts_and_names(secured):
    """Every file a plugins.security.*_filepath names is made by set-up, in the volume mounted there, and
    internal_users.yml holds only admin with a bcrypt hash (never the password)."""
    mounts = _mounts()
    assert set(mounts) == {"certs", "opensearch-security"}
    assert mounts["opensearch-security"] == "opensearch-security"  # over the image's demo files
    made = {f"{mounts[v]}/{f.name}" for v, d in secured["volumes"].items() for f in d.iterdir()}
    named = {v for k, v in _security_settings().items() if k.endswith("_filepath")}
    assert named and named <= made, named - made
    for name in (
        "config.yml",
        "internal_users.yml",
        "roles.yml",
        "roles_mapping.yml",
        "action_groups.yml",
        "tenants.yml",
    ):
        assert f"opensearch-security/{name}" in made, name
    users = yaml.safe_load((secured["volumes"]["opensearch-security"] / "internal_users.yml").read_text())
    assert set(users) == {"_meta", "admin"}
    assert users["admin"]["hash"].startswith("$2") and PASSWORD not in json.dumps(users)


def test_the_env_password_logs_in_over_https_verified_by_the_stacks_ca(secured):
    from devtools.securenode import request

    status, body = request(secured["url"] + "/_plugins/_security/authinfo", secured["ca"], "admin", PASSWORD)
    assert status == 200, body
    info = json.loads(body)
    assert info["user_name"] == "admin" and "all_access" in info["roles"]


def test_a_wrong_or_missing_password_is_refused(secured):
    from devtools.securenode import request

    assert request(secured["url"], secured["ca"], "admin", PASSWORD + "x")[0] == 401
    assert request(secured["url"], secured["ca"], "admin", "admin")[0] == 401  # the demo password
    assert request(secured["url"], secured["ca"])[0] == 401


def test_the_password_user_cannot_touch_the_security_index(secured):
    """Only the admin certificate may change the security configuration: all_access over a password
    does not reach the security index (the plugin protects it whatever system_indices says)."""
    from devtools.securenode import request

    status, body = request(secured["url"] + "/.opendistro_security", secured["ca"], "admin", PASSWORD, method="DELETE")
    assert status == 403, body
    assert request(secured["url"] + "/_plugins/_security/authinfo", secured["ca"], "admin", PASSWORD)[0] == 200


def test_plain_http_and_another_ca_are_refused(secured, tmp_path):
    import ssl

    from devtools.securenode import request

    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(secured["url"].replace("https://", "http://"), timeout=10)
    other = tmp_path / "other"
    subprocess.run(
        [sys.executable, str(ROOT / "docker" / "make_certs.py"), str(other), str(tmp_path / "x")], check=True
    )
    with pytest.raises(urllib.error.URLError) as err:
        request(secured["url"], other / "ca.pem", "admin", PASSWORD)
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)


def test_the_pipeline_indexes_the_samples_through_it(secured, seed_dir):
    from devtools.securenode import request

    index = f"sec-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSEARCH_")}
    env.update(
        OPENSEARCH_URL=secured["url"],
        OPENSEARCH_USER="admin",
        OPENSEARCH_PASSWORD=PASSWORD,
        OPENSEARCH_CA_CERTS=str(secured["ca"]),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(seed_dir), "--skip-images", "--index", index],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "2 indexed" in out and PASSWORD not in out
    status, body = request(f"{secured['url']}/{index}/_count", secured["ca"], "admin", PASSWORD)
    assert status == 200 and json.loads(body)["count"] == 2, body


def test_a_new_env_password_is_loaded_with_the_admin_certificate(secured):
    """README's password change: the set-up re-makes the files from the new .env password, and
    securityadmin.sh (authenticated by the admin certificate from set-up) loads them. Last in this module:
    it changes the password."""
    from devtools import localnode as ln
    from devtools import securenode
    from devtools.securenode import request

    new = PASSWORD + "-2 'x'"
    security = secured["volumes"]["opensearch-security"]
    dist = securenode.distribution_home()
    java = {"PATH": os.environ["PATH"], "OPENSEARCH_JAVA_HOME": str(ln.java_home())}
    subprocess.run(
        [
            "bash",
            str(ROOT / "docker" / "opensearch_security.sh"),
            str(dist / securenode.HASH_TOOL),
            str(ROOT / "docker" / "opensearch-security"),
            str(security),
        ],
        env={**java, "OPENSEARCH_INITIAL_ADMIN_PASSWORD": new},
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = secured["url"].rsplit(":", 1)[1]
    done = subprocess.run(
        [
            "bash",
            str(dist / securenode.PLUGIN_DIR / "tools" / "securityadmin.sh"),
            *("-cd", str(security), "-cacert", str(secured["ca"]), "-h", "127.0.0.1", "-p", port),
            *("-cert", str(security / "admin.pem"), "-key", str(security / "admin-key.pem")),
        ],
        env={**java, "JAVA_HOME": java["OPENSEARCH_JAVA_HOME"]},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert request(secured["url"], secured["ca"], "admin", new)[0] == 200
    assert request(secured["url"], secured["ca"], "admin", PASSWORD)[0] == 401
