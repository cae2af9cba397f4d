"""A real single-node OpenSearch WITH the security plugin on 127.0.0.1, configured by the caller (checkout-only
dev tooling for tests/test_security_config.py).

Why 3.4.0 and not the compose's 3.6.0: Maven Central publishes the security plugin's zip
(``org/opensearch/plugin/opensearch-security``) up to 3.4.0.0, not 3.6.0.0. The security configuration
format (the files ``config.yml``, ``internal_users.yml``, ``roles*.yml``, ``action_groups.yml``,
``tenants.yml``, their ``CType`` names, the ``plugins.security.*`` TLS settings and the hash tool) is the
same in 3.4.0.0 and 3.6.0.0 of opensearch-project/security (``git diff 3.4.0.0 3.6.0.0`` shows no
change in ``config/``, ``tools/``, ``CType``, ``SSLConfigConstants`` or ``Hasher``), so what works here is
what the compose's 3.6.0 image reads.

The node is built like :mod:`devtools.localnode`'s and keeps its safety properties (the same launcher,
node user, home hand-over, watchdog): the core ``integ-test-zip`` of :data:`VERSION` and the plugin zip,
each SHA-512 pinned here, unpacked root-owned and read-only into ``<cache>/opensearch-<VERSION>-security``
and re-verified against a manifest before each use. The 3.4.0 integ-test zip ships only two modules, so
``analysis-common`` and ``mapper-extras`` come from their pinned Maven jars, and the plugin's
``rule-framework`` extension (a module of the full distribution, published nowhere as a plugin) is made
optional in its descriptor (the plugin only registers an attribute with it) and the one library the
plugin takes from it, commons-collections4 (pinned too), goes into the plugin's folder.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from devtools import localnode as ln

VERSION = "3.4.0"
PLUGIN_VERSION = f"{VERSION}.0"
DISTRIBUTION_PATH = f"org/opensearch/distribution/integ-test-zip/opensearch/{VERSION}/opensearch-{VERSION}.zip"
PLUGIN_PATH = f"org/opensearch/plugin/opensearch-security/{PLUGIN_VERSION}/opensearch-security-{PLUGIN_VERSION}.zip"
#: SHA-512 of the files above, computed from the downloads and cross-checked: the core zip against Maven
#: Central's ``.sha1`` (12308f041eaddfa0ea2b66f48a94e0520cbe5ea1; it publishes no ``.sha512``), the
#: plugin zip against its ``.sha512`` and ``.sha1`` (c8608e02ad8df6fe61b0cbb4c821b889b98ebd28).
ZIP_SHA512 = (
    "18cb16a9d251f8e915fbc0ab64b53d2f1ee9299829673c7357446041ae42fe20"
    "94ab16c899edd944bd39aa49ed3aae799b1ff04084a1220d6c6676734a392117"
)
PLUGIN_SHA512 = (
    "aad7c7fb11d17fe6866d93b05a2d3eb581d43c29bd4455371943efe5cfe2f6b0"
    "c6003597e45e2dd8b676fe4f88d677e24b055207ab5d6cfc7bb57a45a608b09a"
)
#: Module jars the integ-test zip lacks: (module folder, artifact, plugin class, SHA-512; each jar's
#: ``.sha1`` on Maven Central matched too).
MODULES = (
    (
        "analysis-common",
        "analysis-common",
        "org.opensearch.analysis.common.CommonAnalysisModulePlugin",
        "ecd84e49248b5fe06002c2f2b727554f6632f2463dd310d25531da1f97601915"
        "702db3b7509b0660ce145ed1e93644dbcfcc7977f181bb3bcf6cc679c08158e0",
    ),
    (
        "mapper-extras",
        "mapper-extras-client",
        "org.opensearch.index.mapper.MapperExtrasModulePlugin",
        "1bb51ecb230460006147de72a57f7af15af95856e496c0709c183c2fa2561f6c"
        "2ececd6df1db01a4d35658561af4c467ca6354f62b60cb25e5c01737271d8e2b",
    ),
)
#: What ``rule-framework`` would give the plugin's class loader as its parent: the plugin calls
#: commons-collections4 without shipping it. (path on Maven Central, SHA-512; its ``.sha1`` matched)
COLLECTIONS_JAR = (
    "org/apache/commons/commons-collections4/4.4/commons-collections4-4.4.jar",
    "5939c9931eb9557caee3b45fe1dd9ce54cabdc4e6182ed7faac77e1a866dd0cb"
    "602bfa4ece2f3316d769913366106bd2b61bf3bb5faad1fa7d808124c06dec0f",
)
PLUGIN_DIR = "plugins/opensearch-security"
HASH_TOOL = f"{PLUGIN_DIR}/tools/hash.sh"
#: The descriptor line the zip ships, and what it becomes here (see the module docstring).
EXTENDS_SHIPPED = "extended.plugins=workload-management;optional=true,rule-framework"
EXTENDS_HERE = "extended.plugins=workload-management;optional=true,rule-framework;optional=true"
#: Written into the distribution (so the manifest covers it): the pins it was installed from.
MARKER = ".seednews-security-installed"
START_WAIT = 240.0


def distribution_home() -> Path:
    return ln.cache_dir() / f"opensearch-{VERSION}-security"


def _manifest() -> Path:
    return ln.cache_dir() / f".opensearch-{VERSION}-security.manifest.json"


def _marker_text() -> str:
    pins = {"zip": ZIP_SHA512, "plugin": PLUGIN_SHA512, "modules": [m[3] for m in MODULES], "lib": COLLECTIONS_JAR[1]}
    return json.dumps(pins) + "\n"


def _maven(path: str) -> str:
    return f"{ln.MAVEN_BASE_URL}/{path}"


def _install_modules(dist: Path, downloads: Path, progress: ln.Progress) -> None:
    for folder, artifact, classname, pin in MODULES:
        jar = ln.download(
            _maven(f"org/opensearch/plugin/{artifact}/{VERSION}/{artifact}-{VERSION}.jar"),
            downloads / f"{artifact}-{VERSION}.jar",
            progress,
            sha512=pin,
        )
        module = dist / "modules" / folder
        module.mkdir(parents=True)
        shutil.copyfile(jar, module / jar.name)
        (module / "plugin-descriptor.properties").write_text(
            f"description={folder}\nversion={VERSION}\nname={folder}\nclassname={classname}\njava.version=21\n"
            f"opensearch.version={VERSION}\ncustom.foldername=\nextended.plugins=\nhas.native.controller=false\n"
        )


def _install_plugin(dist: Path, archive: Path, collections: Path) -> None:
    """What ``opensearch-plugin install`` does for this plugin, minus its demo ``config/`` (the node gets
    its own ``config/opensearch-security``), with ``rule-framework`` optional."""
    target = dist / PLUGIN_DIR
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.filename.startswith("config/"):
                continue
            extracted = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                extracted.chmod(mode & 0o755)
    descriptor = target / "plugin-descriptor.properties"
    text = descriptor.read_text()
    if EXTENDS_SHIPPED not in text.splitlines():
        raise RuntimeError(f"{archive.name}: unexpected extended.plugins in its descriptor")
    descriptor.write_text(text.replace(EXTENDS_SHIPPED, EXTENDS_HERE))
    shutil.copyfile(collections, target / collections.name)
    (target / "tools" / "hash.sh").chmod(0o755)


def ensure_installed(progress: ln.Progress = print) -> Path:
    """The verified distribution with the security plugin (installed on first use; idempotent)."""
    cache, dist, manifest = ln.cache_dir(), distribution_home(), _manifest()

    def ok() -> bool:
        if ln._verify_distribution(dist, manifest) is not None:
            return False
        return (dist / MARKER).read_text() == _marker_text()

    if ok():
        return dist
    with ln._file_lock(cache / ".install-security.lock"):
        if ok():
            return dist
        downloads = cache / "downloads"
        progress(f"installing OpenSearch {VERSION} with the security plugin {PLUGIN_VERSION} (SHA-512 pinned)")
        archive = ln.download(
            _maven(DISTRIBUTION_PATH), downloads / f"opensearch-{VERSION}.zip", progress, sha512=ZIP_SHA512
        )
        plugin = ln.download(
            _maven(PLUGIN_PATH), downloads / f"opensearch-security-{PLUGIN_VERSION}.zip", progress, sha512=PLUGIN_SHA512
        )
        collections = ln.download(
            _maven(COLLECTIONS_JAR[0]),
            downloads / COLLECTIONS_JAR[0].rsplit("/", 1)[1],
            progress,
            sha512=COLLECTIONS_JAR[1],
        )
        staging = Path(tempfile.mkdtemp(prefix=".unpack-security-", dir=cache))
        try:
            ln._extract_zip(archive, staging)
            unpacked = staging / f"opensearch-{VERSION}"
            _install_modules(unpacked, downloads, progress)
            _install_plugin(unpacked, plugin, collections)
            (unpacked / MARKER).write_text(_marker_text())
            ln._make_world_readable(unpacked)
            with contextlib.suppress(FileNotFoundError):
                manifest.unlink()
            if os.path.lexists(dist):
                os.rename(dist, staging / "replaced")
            os.replace(unpacked, dist)
            ln._write_manifest(manifest, ln._build_manifest(dist))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dist


def https_context(ca_file: Path) -> ssl.SSLContext:
    """Verification on, against ``ca_file`` only."""
    return ssl.create_default_context(cafile=str(ca_file))


def request(
    url: str,
    ca_file: Path,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
    method: str = "GET",
) -> tuple[int, bytes]:
    """(status, body) of ``method url`` over verified TLS; an HTTP error status is returned, not raised."""
    req = urllib.request.Request(url, method=method)
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=https_context(ca_file)) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _log_messages(home: Path, count: int = 40) -> str:
    """The last ``count`` lines of the node's main log that are not stack frames (read link-safe and
    bounded, as :mod:`devtools.localnode` reads node files)."""
    try:
        raw = ln._read_untrusted(home, f"logs/{ln.CLUSTER_NAME}.log", 4 * ln.TAIL_BYTES)
    except OSError as exc:
        return f"(no log: {exc})"
    lines = [line for line in raw.decode("utf-8", "replace").splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(lines[-count:])


def start(
    config: dict[str, str],
    settings: dict[str, object],
    ca_file: Path,
    user: str,
    password: str,
    progress: ln.Progress = print,
) -> ln.LocalNode:
    """Start the node with ``settings`` added to opensearch.yml and ``config`` (name below config/ ->
    content) written next to it; wait until ``GET /_cluster/health`` over verified HTTPS as ``user``
    answers green/yellow. The node is stopped (and its home removed) by ``stop()``, or when this process
    ends."""
    dist = ensure_installed(progress)
    java_dir = ln.java_home(progress)
    ident = ln._node_identity()
    base = ln.cache_dir() / "nodes"
    base.mkdir(exist_ok=True)
    home = ln._prepare_home(Path(tempfile.mkdtemp(prefix="node-", dir=base)), ident)
    if ident is not None:
        ln._check_traversable(home)
    http_port = ln._free_port()
    transport_port = ln._free_port()
    files = ln._config_files(dist, home, java_dir / "bin" / "java", http_port, transport_port, overrides=settings)
    files.update(config)
    url = f"https://{ln.BIND_HOST}:{http_port}"
    progress(f"starting OpenSearch {VERSION} with security on {url} (home {home})")
    node, launch_errors = ln._spawn(dist, java_dir, ident, home, files, url, ephemeral=True, detach=False)
    process = node._process
    assert process is not None
    deadline = time.monotonic() + START_WAIT
    while True:
        if process.poll() is not None:
            tail = ln._launch_errors(launch_errors) + ln._log_tail(home)
            shutil.rmtree(home, ignore_errors=True)
            raise RuntimeError(f"OpenSearch exited with code {process.returncode} during startup. Log tail:\n{tail}")
        with contextlib.suppress(OSError):
            status, body = request(f"{url}/_cluster/health", ca_file, user, password, timeout=5)
            if status == 200 and json.loads(body).get("status") in ("green", "yellow"):
                break
        if time.monotonic() > deadline:
            tail = ln._launch_errors(launch_errors) + _log_messages(home)
            node.stop()
            raise RuntimeError(
                f"OpenSearch did not become healthy within {START_WAIT:.0f}s at {url}. Log tail:\n{tail}"
            )
        time.sleep(ln.HEALTH_POLL_INTERVAL)
    launch_errors.close()
    return node
