"""Command line: `seednews` (installed) or `python -m pipeline` (a checkout).

(Over 400 lines on purpose: this is the contract a script relies on, read and tested as one in
tests/test_cli.py: the arguments and their checks, where each line goes (stdout, stderr, the progress
line, --json), and every error translated into one line that names the setting to change.)

    seednews run examples/seeds            # index a folder (OPENSEARCH_URL or 127.0.0.1:9200)
    seednews run examples/seeds --json     # only the JSON report on stdout; every human line on stderr
    seednews facets --field provider.name  # facet counts of the index

Every input (OPENSEARCH_URL, the index name, --batches, --field) is checked before the first request;
a bad one is one line on stderr and exit code 2. The exit codes are in ``EXIT_CODES`` (shown by --help).

While a run works, a terminal (stderr) shows one updating line with files done/total and an ETA; a log
file or pipe gets a plain line every ``PROGRESS_EVERY_PCT`` % or ``PROGRESS_EVERY_S`` s. The per-file lines the
flow emits mid-run (quarantined, duplicate, ...) and its batch counters are shown with ``-v`` only: the
summary at the end lists those files already. The DAG passes ``print`` to the same flow and keeps them all.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from typing import Any, TextIO

from pipeline.config import Settings, check_index_name
from pipeline.run.flow import run
from pipeline.run.options import DEFAULT_MAX_BATCHES, RunOptions
from pipeline.run.tuning import Tuning
from pipeline.stores.client import make_client
from pipeline.types import STATES

DESCRIPTION = "seednews: index news seed files (YAML front matter) into OpenSearch."
EXIT_CODES = """exit codes:
  0  every file indexed, unchanged or deliberately set aside (quarantined, duplicate)
  1  some documents failed to index (retried next run, or kept in the dead-letter index),
     or some files met an internal error (a bug: every other file was processed)
  2  bad usage or settings, OpenSearch unreachable or refusing, or the vanish guard
     stopped the run (one line on stderr says why; with --json stdout is then empty)"""
PROGRESS_EVERY_PCT = 10  # not a terminal: one progress line per this many percent...
PROGRESS_EVERY_S = 30.0  # ...or after this many seconds, whichever comes first
TTY_REDRAW_S = 0.2  # a terminal's progress line is redrawn at most this often
FACETABLE_TYPES = {"keyword", "boolean", "date", "byte", "short", "integer", "long", "float", "double"}

# The flow's own lines (pipeline/run/flow.py run/process_batch; pipeline/run/outcomes.py settle), read
# here to drive the progress line and to keep per-file lines out of the default output.
_DISCOVERED = re.compile(r"discovered \d+ seed files in .*: \d+ unchanged, (\d+) to process in \d+ batches")
_BATCH = re.compile(r"batch \d+/\d+: (\d+) files")
_BATCH_PROGRESS = re.compile(r"batch progress: (\d+)/\d+ files")
_PARSED = re.compile(r"parsed: \d+/\d+ files")
_SETTLED_APART = "|".join(s for s in STATES if s not in ("indexed", "unchanged"))
_PER_FILE = re.compile(rf".+: ({_SETTLED_APART})(: .*)?", re.S)


def prog_name(argv0: str | None = None) -> str:
    """How the user called us: ``seednews`` (the console script) or ``python -m pipeline``."""
    base = os.path.basename(sys.argv[0] if argv0 is None and sys.argv else argv0 or "")
    if base in ("", "-c", "-m", "__main__.py", "cli.py") or base.startswith("python"):
        return "python -m pipeline"
    return base.removesuffix(".exe")


def version() -> str:
    """The installed distribution's version; in a checkout that is not installed, the package's own."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("seednews")
    except PackageNotFoundError:
        from pipeline import __version__

        return f"{__version__} (checkout, not installed)"


def _fmt_s(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Files done of the run's total, with an ETA from the rate so far. A terminal gets one line redrawn
    in place (``\\r``); anything else gets plain lines now and then. No library: rich and tqdm come into
    requirements.lock only with the Airflow extras, and the CLI must work with the runtime dependencies."""

    def __init__(self, stream: TextIO, tty: bool, clock=time.monotonic) -> None:
        self.stream, self.tty, self.clock = stream, tty, clock
        self.total = self.done = 0
        self.started = self.last_time = 0.0
        self.last_pct = -1
        self.shown = False  # a terminal line is on screen

    def start(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, self.clock()
        self.last_time, self.last_pct = self.started, 0
        if total and self.tty:
            self._draw()

    def text(self) -> str:
        elapsed = self.clock() - self.started
        pct = 100 * self.done // self.total if self.total else 100
        eta = "--" if not self.done else _fmt_s(elapsed * (self.total - self.done) / self.done)
        return f"progress: {self.done}/{self.total} files ({pct}%), {_fmt_s(elapsed)} elapsed, ETA {eta}"

    def update(self, done: int) -> None:
        if not self.total:
            return
        self.done = min(max(done, self.done), self.total)
        now = self.clock()
        if self.tty:
            if now - self.last_time >= TTY_REDRAW_S or self.done == self.total:
                self.last_time = now
                self._draw()
            return
        pct = 100 * self.done // self.total
        if pct // PROGRESS_EVERY_PCT > self.last_pct // PROGRESS_EVERY_PCT or now - self.last_time >= PROGRESS_EVERY_S:
            self.last_time, self.last_pct = now, pct
            print(self.text(), file=self.stream, flush=True)

    def finish(self) -> None:
        """The run got through every file: show 100 % and end the line."""
        if self.total and self.done < self.total:
            self.update(self.total)
        self.stop()

    def stop(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
        self.total = 0

    def _draw(self) -> None:
        self.stream.write("\r" + self.text() + "\033[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def redraw(self) -> None:
        if self.tty and self.total and not self.shown:
            self._draw()


class Console:
    """Where the CLI's human lines go: stdout, or stderr with ``--json`` (stdout then carries the JSON
    only); the progress line lives on stderr and is cleared before any other line is written."""

    def __init__(self, *, json_mode: bool, verbose: bool) -> None:
        self.out = sys.stderr if json_mode else sys.stdout
        self.verbose = verbose
        self.progress = Progress(sys.stderr, tty=sys.stderr.isatty())
        self._batch_base = self._batch_size = 0
        for handler in logging.getLogger().handlers:  # a log line (a warning) starts on a line of its own
            handler.addFilter(self._clear_first)

    def _clear_first(self, record: logging.LogRecord) -> bool:
        self.progress.clear()
        return True

    def line(self, text: str) -> None:
        self.progress.clear()
        print(text, file=self.out, flush=True)
        self.progress.redraw()

    def emit(self, text: str) -> None:
        """The ``emit`` the flow calls: progress counters drive the progress line, per-file lines are
        kept for ``-v`` (the summary lists those files), anything else is shown."""
        if m := _DISCOVERED.fullmatch(text):
            self.line(text)
            self.progress.start(int(m.group(1)))
            return
        if m := _BATCH.fullmatch(text):
            self._batch_base += self._batch_size
            self._batch_size = int(m.group(1))
            self.progress.update(self._batch_base)
        elif m := _BATCH_PROGRESS.fullmatch(text):
            self.progress.update(self._batch_base + int(m.group(1)))
        elif not (_PARSED.fullmatch(text) or _PER_FILE.fullmatch(text)):
            self.line(text)
            return
        if self.verbose:
            self.line(text)


def _at_least_one(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def facet_fields() -> list[str]:
    """Fields a terms facet can count: the aggregatable fields of the article template (mappings/)."""
    from pipeline.stores.indices import load_template

    out: list[str] = []

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            if spec.get("type") in FACETABLE_TYPES and spec.get("doc_values", True):
                out.append(path)
            for sub, subspec in spec.get("fields", {}).items():
                if subspec.get("type") in FACETABLE_TYPES:
                    out.append(f"{path}.{sub}")
            walk(spec.get("properties", {}), path + ".")

    walk(load_template()["template"]["mappings"]["properties"], "")
    return sorted(out)


def check_field(field: str) -> None:
    from pipeline.config import ConfigError

    valid = facet_fields()
    if field not in valid:
        raise ConfigError(
            f"--field {field!r} is not a facet field of the article index; use one of: {', '.join(valid)}"
        )


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "index", None):
        check_index_name(args.index, "--index")
    overrides = {"index_base": args.index} if getattr(args, "index", None) else {}
    return Settings.from_env(**overrides)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    tuning = Tuning.from_env(os.environ)
    if args.facets:
        check_field(args.field)
    console = Console(json_mode=args.json, verbose=args.verbose)
    console.line(f"OpenSearch: {settings.display_url}  alias: {settings.alias}")
    options = RunOptions(
        seed_dir=args.seed_dir,
        full_rebuild=args.full_rebuild,
        dry_run=args.dry_run,
        check_images=not args.skip_images,
        max_batches=args.batches,
        skip_unchanged=not args.no_ledger,
        replay_dead_letters=args.replay_dead_letters,
        allow_mass_delete=args.allow_mass_delete,
        tuning=tuning,
    )
    try:
        report = run(settings, options, emit=console.emit)
    except BaseException:
        console.progress.stop()  # the line stays as it was: the run did not get further
        raise
    console.progress.finish()
    console.line(report.render())
    code = 0 if report.ok else 1
    facets = None
    if args.facets and not args.dry_run:
        facets = facet_counts(settings, args.field, console.line)
    if args.json:
        data = {
            "ok": report.ok,
            "exit_code": code,
            "problem": report.problem(),
            "target": report.target,
            "files_seen": report.files_seen,
            "counts": report.counts,
            "removed": report.removed,
            "dry_run": report.dry_run,
            **({"facets": facets} if facets is not None else {}),
            "report": report.to_dict(),
        }
        print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)
    return code


def facet_counts(settings: Settings, field: str, show) -> dict[str, Any]:
    from pipeline.stores import indices

    client = make_client(settings)
    total = indices.count(client, settings.alias)
    values = indices.facet(client, settings.alias, field)
    show(f"{total} documents in {settings.alias}; facet '{field}':")
    for value, n in values:
        show(f"  {value}: {n}")
    return {"field": field, "documents": total, "values": [[v, n] for v, n in values]}


def cmd_facets(args: argparse.Namespace) -> int:
    check_field(args.field)
    facet_counts(_settings(args), args.field, print)
    return 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    prog = prog or prog_name()
    fmt = argparse.RawDescriptionHelpFormatter
    examples = (
        f"examples:\n  {prog} run examples/seeds\n  {prog} run examples/seeds --json | jq .counts\n"
        f"  {prog} facets --field provider.name\n\nsettings: OPENSEARCH_URL (default http://127.0.0.1:9200), "
        "OPENSEARCH_USER,\n  OPENSEARCH_PASSWORD, OPENSEARCH_CA_CERTS, OPENSEARCH_TIMEOUT, SEEDNEWS_INDEX (see README)"
    )
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=f"{examples}\n\n{EXIT_CODES}", formatter_class=fmt
    )
    parser.add_argument("--version", action="version", version=f"seednews {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and every per-file line mid-run")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="discover, parse, normalize, check images and index a seed folder",
        description="Discover, parse, normalize, check images and index a seed folder (or s3://bucket/prefix).",
        epilog=EXIT_CODES,
        formatter_class=fmt,
    )
    r.add_argument("seed_dir")
    # also after "run" (SUPPRESS: not given here, the top-level -v stands)
    r.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="as -v before run")
    r.add_argument("--full-rebuild", action="store_true", help="write a new index and swap the alias when it validates")
    r.add_argument("--dry-run", action="store_true", help="parse and normalize only; write nothing")
    r.add_argument("--skip-images", action="store_true", help="do not check image URLs")
    r.add_argument("--replay-dead-letters", action="store_true", help="send refused documents again (after a fix)")
    r.add_argument(
        "--no-ledger", action="store_true", help="process every file, even unchanged ones (the ledger is still written)"
    )
    r.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="lift the vanish guard: many seed files are gone on purpose, delete their articles",
    )
    r.add_argument(
        "--batches", type=_at_least_one, default=DEFAULT_MAX_BATCHES, help="split the folder into at most N batches"
    )
    r.add_argument("--index", help="index base / alias name (default: SEEDNEWS_INDEX or seednews-articles)")
    r.add_argument("--facets", action="store_true", help="print topic facet counts at the end")
    r.add_argument("--field", default="topics", help=argparse.SUPPRESS)
    r.add_argument(
        "--json", action="store_true", help="print only the JSON report on stdout (human lines go to stderr)"
    )
    r.set_defaults(func=cmd_run)

    f = sub.add_parser("facets", help="print facet counts of the index", epilog=EXIT_CODES, formatter_class=fmt)
    f.add_argument("--field", default="topics", help="a keyword, number, date or boolean field (default: topics)")
    f.add_argument("--index", help="index base / alias name (default: SEEDNEWS_INDEX or seednews-articles)")
    f.set_defaults(func=cmd_facets)

    from pipeline.dashboards.load import (
        add_subparser as add_dashboards,  # python -m pipeline dashboards import
    )

    add_dashboards(sub)
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # opensearch-py logs every failed attempt as a WARNING with a full traceback; our own
        # "retrying" warnings and the final "error:" line say what matters
        logging.getLogger("opensearch").setLevel(logging.ERROR)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # infrastructure errors: one clear line, not a traceback
        if args.verbose:
            raise
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 2


_TLS_PLAIN = (
    "WRONG_VERSION_NUMBER",
    "wrong version number",
    "record layer failure",
    "unknown protocol",
    "http request",
)
_UNRESOLVED = (
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "getaddrinfo",
)


def describe_error(exc: BaseException) -> str:
    """One line for a person: what went wrong with the cluster, the URL (never with a password in it)
    and the setting to change. A bad setting or an unusable seed folder is its own message, a sentence
    that names the value (no exception class name)."""
    from pipeline.errors import ConfigError, SeedRootError

    if isinstance(exc, ConfigError | SeedRootError):
        return str(exc)
    try:
        settings = Settings.from_env()
        where, user = settings.display_url, settings.username
    except ConfigError as bad:
        return str(bad)
    text = f"{type(exc).__name__}: {exc}"
    try:
        from opensearchpy.exceptions import (
            AuthenticationException,
            AuthorizationException,
            ConnectionError,
            ConnectionTimeout,
            SSLError,
        )
    except ImportError:  # pragma: no cover
        return _short(text)
    if isinstance(exc, AuthenticationException):
        who = (
            f"user {user!r} with password ***" if user else "no credentials (set OPENSEARCH_USER / OPENSEARCH_PASSWORD)"
        )
        return f"OpenSearch at {where} refused the credentials (HTTP 401): {who}"
    if isinstance(exc, AuthorizationException):
        return f"OpenSearch at {where} denied user {user!r} (HTTP 403): missing permissions for this index"
    if isinstance(exc, SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        if any(mark in text for mark in _TLS_PLAIN):
            plain = where.replace("https://", "http://")
            return (
                f"OpenSearch at {where} does not speak TLS (protocol mismatch): the node speaks plain http; "
                f"use {plain} in OPENSEARCH_URL"
            )
        m = re.search(r"certificate verify failed: ([^()\]]+)", text)
        why = f" ({m.group(1).strip()})" if m else f" ({_short(text, 200)})"
        return (
            f"the TLS certificate of {where} is not trusted{why}, verification is on: set OPENSEARCH_CA_CERTS "
            "to the CA bundle (PEM) that signed it"
        )
    if isinstance(exc, ConnectionTimeout):
        return (
            f"OpenSearch at {where} did not answer within {settings.timeout:g} s "
            f"({settings.max_retries} retries): raise OPENSEARCH_TIMEOUT, or check the node and OPENSEARCH_URL"
        )
    if isinstance(exc, ConnectionError):
        if "Connection refused" in text or "Errno 111" in text:
            return f"nothing listens at {where} (connection refused): start OpenSearch there, or fix OPENSEARCH_URL"
        if any(mark in text for mark in _UNRESOLVED):
            return f"cannot resolve the host of {where}: fix OPENSEARCH_URL"
        inner = re.findall(r"\[Errno -?\d+\] ([^)'\"]+)", text)
        why = inner[-1] if inner else _short(text, 200)
        return f"cannot connect to OpenSearch at {where} ({why}): check OPENSEARCH_URL"
    return _short(text)


def _short(text: str, limit: int = 400) -> str:
    from pipeline.config import redact_url

    text = redact_url(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


if __name__ == "__main__":
    sys.exit(main())
