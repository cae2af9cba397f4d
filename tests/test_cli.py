"""The CLI as a script sees it (issue 19): --version, --json that json.loads can read, exit codes in
--help, every bad input refused before the first request with one exact line, connection errors that
name the cause and the setting, and a progress line instead of per-file lines mid-run.

Everything talks to 127.0.0.1 only: the shared test node, or servers these tests start on loopback.
"""

from __future__ import annotations

import ast
import http.server
import io
import json
import logging
import os
import pty
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from importlib.metadata import version as dist_version
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.config import INDEX_NAME_PATTERN, ConfigError, check_index_name
from tests import faultkit as fk
from tests.conftest import ROOT

SEEDNEWS = Path(sys.executable).with_name("seednews")  # the console script of the venv


def _env(url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "SEEDNEWS_"))}
    env["PYTHONPATH"] = str(ROOT)
    if url is not None:
        env["OPENSEARCH_URL"] = url
    env.update(extra)
    return env


def _pipeline(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _drop(url: str, index: str) -> None:
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    client = make_client(Settings(opensearch_url=url))
    client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
    client.indices.delete_index_template(name=index, ignore=[404])
    client.close()


# ----------------------------------------------------------------------------- version and help
def test_version_is_the_installed_distributions():
    want = f"seednews {dist_version('seednews')}\n"
    assert _pipeline("--version", env=_env(None)).stdout == want
    assert subprocess.run([SEEDNEWS, "--version"], capture_output=True, text=True, timeout=60).stdout == want


def test_help_names_the_command_as_called_and_documents_the_exit_codes():
    script = subprocess.run([SEEDNEWS, "--help"], capture_output=True, text=True, timeout=60).stdout
    module = _pipeline("--help", env=_env(None)).stdout
    assert script.startswith("usage: seednews ") and "  seednews run examples/seeds" in script
    assert module.startswith("usage: python -m pipeline ") and "  python -m pipeline facets" in module
    run_help = _pipeline("run", "--help", env=_env(None)).stdout
    for text in (script, run_help):
        assert "``" not in text
        codes = text[text.index("exit codes:") :]
        assert re.search(r"^  0  every file indexed", codes, re.M)
        assert re.search(r"^  1  some documents failed to index", codes, re.M) and "internal error" in codes
        assert re.search(r"^  2  bad usage or settings", codes, re.M) and "vanish guard" in codes
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    para = " ".join(readme[readme.index("Exit codes: 0") :].split("\n\n")[0].split())
    for words in ("0 all indexed", "1 some documents failed to index", "internal error", "2 bad usage or settings"):
        assert words in para, words
    assert "vanish guard" in para


# ----------------------------------------------------------------------------- --json
def test_run_json_prints_only_the_report_on_stdout(opensearch_url, seed_dir):
    index = f"cli-{uuid.uuid4().hex[:8]}"
    try:
        done = _pipeline("run", str(seed_dir), "--skip-images", "--index", index, "--json", env=_env(opensearch_url))
        assert done.returncode == 0, done.stderr[-3000:]
        data = json.loads(done.stdout)
        assert data["ok"] is True and data["exit_code"] == 0 and data["problem"] is None
        assert data["counts"] == {"indexed": 2} and data["files_seen"] == 2 and data["removed"] == 0
        assert data["target"] == index and data["report"]["counts"] == {"indexed": 2}
        assert f"OpenSearch: {opensearch_url}  alias: {index}" in done.stderr
        assert "seednews run: 2 seed files seen: 2 indexed" in done.stderr
        # without --json the summary stays on stdout, as before
        again = _pipeline("run", str(seed_dir), "--skip-images", "--index", index, env=_env(opensearch_url))
        assert again.returncode == 0 and "seednews run: 2 seed files seen: 2 unchanged" in again.stdout
    finally:
        _drop(opensearch_url, index)


# ----------------------------------------------------------------------------- bad input: before any request
class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        _Recorder.seen.append(f"{self.command} {self.path}")
        self.send_response(500)
        self.end_headers()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


VALID_FIELDS_START = "use one of: category, cited_by, cited_by_count, heat, id, image_health, "
BAD_INPUTS = [
    (
        {"OPENSEARCH_URL": "htp:/x"},
        ["run", "SEEDS"],
        "error: OPENSEARCH_URL is not a URL (write http://host:port or https://host:port): htp:/x",
    ),
    (
        {"OPENSEARCH_URL": "ftp://127.0.0.1:9200"},
        ["run", "SEEDS"],
        "error: OPENSEARCH_URL: the scheme must be http or https, not 'ftp': ftp://127.0.0.1:9200",
    ),
    (
        {"OPENSEARCH_URL": "http://bad host:9200"},
        ["run", "SEEDS"],
        "error: OPENSEARCH_URL: 'bad host' is not a valid host name or IP address: http://bad host:9200",
    ),
    ({"OPENSEARCH_URL": "http://:9200"}, ["run", "SEEDS"], "error: OPENSEARCH_URL has no host: http://:9200"),
    (
        {},
        ["run", "SEEDS", "--index", "Bad Index!"],
        "error: --index 'Bad Index!' is not a valid OpenSearch index name: has uppercase letters; contains ' ' "
        '(use lowercase, no space or any of \\/*?"<>|,#:, not starting with - _ +)',
    ),
    (
        {"SEEDNEWS_INDEX": "_articles"},
        ["facets"],
        "error: SEEDNEWS_INDEX '_articles' is not a valid OpenSearch index name: starts with '_' "
        '(use lowercase, no space or any of \\/*?"<>|,#:, not starting with - _ +)',
    ),
    ({}, ["run", "SEEDS", "--batches", "0"], "seednews run: error: argument --batches: must be at least 1, not 0"),
    (
        {},
        ["facets", "--field", "nosuchfield"],
        "error: --field 'nosuchfield' is not a facet field of the article index; " + VALID_FIELDS_START,
    ),
    (
        {},
        ["run", "SEEDS", "--facets", "--field", "title"],
        "error: --field 'title' is not a facet field of the article index; " + VALID_FIELDS_START,
    ),
]


@pytest.mark.parametrize(
    ("env", "argv", "message"), BAD_INPUTS, ids=[" ".join(b[1][2:]) or b[2][:40] for b in BAD_INPUTS]
)
def test_bad_input_is_one_line_exit_2_before_any_request(recorder, seed_dir, env, argv, message):
    full = {"OPENSEARCH_URL": recorder, **env}
    done = subprocess.run(
        [SEEDNEWS, *[str(seed_dir) if a == "SEEDS" else a for a in argv]],
        env=_env(None, **full),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(message), last
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert _Recorder.seen == []  # nothing reached a server
    if "--field" in argv:
        assert ", topics, topics.folded, " in last and "title.keyword" in last


def test_the_dag_param_and_the_cli_share_one_index_rule():
    source = (ROOT / "dags" / "seednews_index.py").read_text(encoding="utf-8")
    literal = re.search(r"\n\s+pattern=(r'.*?'|r\".*?\"),\n", source)
    assert literal and ast.literal_eval(literal.group(1)) == INDEX_NAME_PATTERN
    names = [
        "seednews-articles",
        "a",
        "news.2026_x",
        "é-news",
        "Bad",
        "a b",
        "a,b",
        "a#b",
        "a:b",
        "a*",
        "-a",
        "_a",
        "+a",
    ]
    names += [".", "..", ".hidden", "a" * 226, "a" * 227, "a\\b", "a/b", 'a"b', "a<b", "a|b", "a?b"]
    for name in names:
        try:
            check_index_name(name)
            ok = True
        except ConfigError:
            ok = False
        assert ok == bool(re.match(INDEX_NAME_PATTERN, name)), name


def test_a_missing_seed_folder_is_one_line_that_names_it(opensearch_url, tmp_path):
    """Seen: "error: SeedRootError: seed folder ... does not exist" (the class name is noise for a person)."""
    missing = tmp_path / "nonexistent"
    index = f"cli-missing-{uuid.uuid4().hex[:8]}"
    done = _pipeline("run", str(missing), "--dry-run", "--index", index, env=_env(opensearch_url))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: seed folder '{missing}' does not exist or is not a folder"
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- connection errors
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(server) -> str:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return str(server.server_address[1])


class _PlainHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    d = tmp_path_factory.mktemp("selfsigned")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem"),
            *("-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        cwd=d,
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port = _serve(server)
    yield port
    server.shutdown()


@pytest.fixture(scope="module")
def silent_port():
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield str(sock.getsockname()[1])
    sock.close()


def _error_line(url: str, seed_dir: Path, **extra: str) -> tuple[str, float]:
    env = _env(url, OPENSEARCH_MAX_RETRIES="0", SEEDNEWS_READ_RETRY_DEADLINE="0", **extra)
    t = time.monotonic()
    done = _pipeline("run", str(seed_dir), "--skip-images", "--index", "cli-errors", env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stdout + done.stderr
    return done.stderr.strip().splitlines()[-1], time.monotonic() - t


def test_https_to_a_plain_http_node_says_protocol_mismatch(seed_dir):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainHandler)
    port = _serve(server)
    try:
        line, _ = _error_line(f"https://writer:s3cret@127.0.0.1:{port}", seed_dir)
    finally:
        server.shutdown()
    assert line == (
        f"error: OpenSearch at https://127.0.0.1:{port} does not speak TLS (protocol mismatch): the node "
        f"speaks plain http; use http://127.0.0.1:{port} in OPENSEARCH_URL"
    )


def test_a_closed_port_says_connection_refused(seed_dir):
    port = _free_port()
    line, _ = _error_line(f"http://127.0.0.1:{port}", seed_dir)
    assert line == (
        f"error: nothing listens at http://127.0.0.1:{port} (connection refused): start OpenSearch there, "
        "or fix OPENSEARCH_URL"
    )


def test_a_node_that_never_answers_says_timeout_and_the_setting(seed_dir, silent_port):
    line, took = _error_line(f"http://127.0.0.1:{silent_port}", seed_dir, OPENSEARCH_TIMEOUT="1")
    assert line == (
        f"error: OpenSearch at http://127.0.0.1:{silent_port} did not answer within 1 s (0 retries): "
        "raise OPENSEARCH_TIMEOUT, or check the node and OPENSEARCH_URL"
    )
    assert took < 30


def test_an_untrusted_certificate_says_set_the_ca_bundle(seed_dir, self_signed):
    line, _ = _error_line(f"https://127.0.0.1:{self_signed}", seed_dir)
    assert line == (
        f"error: the TLS certificate of https://127.0.0.1:{self_signed} is not trusted (self-signed certificate), "
        "verification is on: set OPENSEARCH_CA_CERTS to the CA bundle (PEM) that signed it"
    )


def test_one_client_shared_by_threads_keeps_its_connections(opensearch_url, caplog):
    """The run's main thread, writer thread and image-cache calls share one client: no "Connection pool
    is full, discarding connection" (urllib3's default pool holds one connection)."""
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    client = make_client(Settings(opensearch_url=opensearch_url))
    caplog.set_level(logging.WARNING, logger="urllib3")
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        for _ in range(15):
            client.cluster.health()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


# ----------------------------------------------------------------------------- progress
def test_progress_off_a_terminal_is_a_few_plain_lines():
    now = [0.0]
    out = io.StringIO()
    p = cli.Progress(out, tty=False, clock=lambda: now[0])
    p.start(5000)
    for done in range(0, 5001, 50):
        now[0] += 0.1
        p.update(done)
    p.finish()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 11 and "\r" not in out.getvalue()
    assert lines[0] == "progress: 500/5000 files (10%), 1 s elapsed, ETA 10 s"
    assert lines[-1] == "progress: 5000/5000 files (100%), 10 s elapsed, ETA 0 s"
    # slow runs still say something every PROGRESS_EVERY_S seconds
    out, p = io.StringIO(), cli.Progress(io.StringIO(), tty=False, clock=lambda: now[0])
    p.stream = out
    p.start(1000)
    for done in (1, 2, 3):
        now[0] += cli.PROGRESS_EVERY_S
        p.update(done)
    assert len(out.getvalue().splitlines()) == 3


def test_progress_on_a_terminal_redraws_in_place_and_a_failed_run_is_not_shown_done():
    now = [0.0]
    out = io.StringIO()
    p = cli.Progress(out, tty=True, clock=lambda: now[0])
    p.start(100)
    now[0] = 2.0
    p.update(40)
    p.clear()  # another line is about to be written
    assert out.getvalue().endswith("\r\x1b[K")
    p.redraw()
    p.stop()  # the run raised: the line ends where it was
    text = out.getvalue()
    assert text.startswith("\rprogress: 0/100 files (0%), 0 s elapsed, ETA --\x1b[K")
    assert "\rprogress: 40/100 files (40%), 2 s elapsed, ETA 3 s\x1b[K" in text and text.endswith("\n")
    assert "100%" not in text


def _bad_seeds(folder: Path) -> list[str]:
    names = []
    for i in range(3):
        (folder / f"bad{i}.txt").write_text(f'---\ntitle: "unterminated {i}\n---\n', encoding="utf-8")
        names.append(str(folder / f"bad{i}.txt"))
    return names


def test_run_off_a_terminal_shows_progress_lines_not_per_file_lines(opensearch_url, tmp_path):
    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 2400, tag="cliprog")
    bad = _bad_seeds(folder)
    index = f"cliprog-{uuid.uuid4().hex[:8]}"
    try:
        done = _pipeline(
            "run", str(folder), "--skip-images", "--index", index, "--batches", "2", env=_env(opensearch_url)
        )
        assert done.returncode == 0, done.stderr[-3000:]
        progress = [x for x in done.stderr.splitlines() if x.startswith("progress: ")]
        assert 2 <= len(progress) <= 11, done.stderr
        assert progress[-1].startswith("progress: 2403/2403 files (100%)") and "ETA" in progress[0]
        both = done.stdout + done.stderr
        assert not [b for b in bad if f"{b}: quarantined" in both]  # the mid-run per-file lines
        assert "batch 1/2" not in both and "batch progress:" not in both
        assert "2403 seed files seen: 2400 indexed, 3 quarantined" in done.stdout
        assert "    - bad0.txt: yaml: " in done.stdout  # the summary names them
        # -v: every per-file line and counter again
        verbose = _pipeline(
            "-v", "run", str(folder), "--skip-images", "--index", index, "--no-ledger", env=_env(opensearch_url)
        )
        assert verbose.returncode == 0, verbose.stderr[-3000:]
        assert all(f"{b}: quarantined: yaml: " in verbose.stdout for b in bad) and "batch 1/" in verbose.stdout
    finally:
        _drop(opensearch_url, index)


def test_run_on_a_terminal_redraws_one_progress_line_with_an_eta(opensearch_url, tmp_path):
    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 1500, tag="clitty")
    index = f"clitty-{uuid.uuid4().hex[:8]}"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [SEEDNEWS, "run", str(folder), "--skip-images", "--index", index, "--batches", "1", "--json"],
            env=_env(opensearch_url),
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        chunks = []
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, "no output for 120 s"
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.stdout.read()
        assert proc.wait(timeout=60) == 0
        tty = b"".join(chunks).decode()
        assert "\rprogress: 0/1500 files (0%), 0 s elapsed, ETA --\x1b[K" in tty
        assert re.search(r"\rprogress: 1000/1500 files \(66%\), \d+ s elapsed, ETA \d+ s\x1b\[K", tty), tty
        assert "\rprogress: 1500/1500 files (100%)" in tty
        assert "seednews run: 1500 seed files seen: 1500 indexed" in tty  # human lines: on the terminal
        assert json.loads(stdout)["counts"] == {"indexed": 1500}
    finally:
        os.close(master)
        _drop(opensearch_url, index)
