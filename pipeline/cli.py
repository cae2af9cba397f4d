"""Command line: ``python -m pipeline`` (or ``seednews``).

    python -m pipeline run examples/seeds            # index a folder (OPENSEARCH_URL or 127.0.0.1:9200)
    python -m pipeline facets                        # topic facet counts of the index

The local OpenSearch dev node is development tooling, outside this package: ``python -m devtools.localnode
start|stop|status`` from a checkout.

Exit codes: 0 every file indexed, unchanged or deliberately set aside (quarantined, duplicate);
1 some documents failed to index (retried next run, or kept in the dead-letter index); 2 bad usage,
an infrastructure error, or the vanish guard stopped the run (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pipeline.config import Settings, make_client
from pipeline.run.flow import DEFAULT_MAX_BATCHES, RunOptions, run


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"index_base": args.index} if getattr(args, "index", None) else {}
    return Settings.from_env(**overrides)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"OpenSearch: {settings.display_url}  alias: {settings.alias}")
    options = RunOptions(
        seed_dir=args.seed_dir,
        full_rebuild=args.full_rebuild,
        dry_run=args.dry_run,
        check_images=not args.skip_images,
        max_batches=args.batches,
        skip_unchanged=not args.no_ledger,
        replay_dead_letters=args.replay_dead_letters,
        allow_mass_delete=args.allow_mass_delete,
    )
    report = run(settings, options)
    print(report.render())
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    if args.facets and not args.dry_run:
        cmd_facets(args, settings)
    return 0 if report.ok else 1


def cmd_facets(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from pipeline.stores import indices

    settings = settings or _settings(args)
    client = make_client(settings)
    total = indices.count(client, settings.alias)
    print(f"{total} documents in {settings.alias}; facet '{args.field}':")
    for value, n in indices.facet(client, settings.alias, args.field):
        print(f"  {value}: {n}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="discover, parse, normalize, check images and index a seed folder")
    r.add_argument("seed_dir")
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
    r.add_argument("--batches", type=int, default=DEFAULT_MAX_BATCHES, help="split the folder into at most N batches")
    r.add_argument("--index", help="index base / alias name (default: SEEDNEWS_INDEX or seednews-articles)")
    r.add_argument("--facets", action="store_true", help="print topic facet counts at the end")
    r.add_argument("--field", default="topics", help=argparse.SUPPRESS)
    r.add_argument("--json", action="store_true", help="also print the report as JSON")
    r.set_defaults(func=cmd_run)

    f = sub.add_parser("facets", help="print facet counts of the index")
    f.add_argument("--field", default="topics")
    f.add_argument("--index")
    f.set_defaults(func=cmd_facets)

    from pipeline.dashboards.load import (
        add_subparser as add_dashboards,  # python -m pipeline dashboards import
    )

    add_dashboards(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


def describe_error(exc: BaseException) -> str:
    """One line for a person: what went wrong with the cluster, never with a password in it."""
    from pipeline.config import ConfigError, Settings, redact_url

    if isinstance(exc, ConfigError):
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
            SSLError,
        )
    except ImportError:  # pragma: no cover
        return redact_url(text)
    if isinstance(exc, AuthenticationException):
        who = (
            f"user {user!r} with password ***" if user else "no credentials (set OPENSEARCH_USER / OPENSEARCH_PASSWORD)"
        )
        return f"OpenSearch at {where} refused the credentials (HTTP 401): {who}"
    if isinstance(exc, AuthorizationException):
        return f"OpenSearch at {where} denied user {user!r} (HTTP 403): missing permissions for this index"
    if isinstance(exc, SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"the TLS certificate of {where} is not trusted (verification is on): set OPENSEARCH_CA_CERTS "
            f"to the CA bundle that signed it ({_short(text)})"
        )
    return _short(text)


def _short(text: str, limit: int = 400) -> str:
    from pipeline.config import redact_url

    text = redact_url(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


if __name__ == "__main__":
    sys.exit(main())
