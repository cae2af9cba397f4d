"""The run report as a small Markdown file for people: counts per outcome (``RunReport.counts``) and
the index's facet counts per topic and provider (queried from OpenSearch after the run).

Written by the DAG's ``finalize`` task to ``SEEDNEWS_REPORT_DIR`` (default ``$AIRFLOW_HOME/reports``,
else ``./reports``), one file per run, its path printed in the task log; ``run_note`` fits it to a DAG
run's note (the UI renders that Markdown on the run's page; Airflow keeps 1,000 characters of it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.types import State

ENV_REPORT_DIR = "SEEDNEWS_REPORT_DIR"
FACET_FIELDS = (("topics", "Topic"), ("provider.name", "Provider"))
FACET_FIELD_NAMES = tuple(field for field, _ in FACET_FIELDS)
FACET_SIZE = 25
NOTE_LIMIT = 1000  # a DAG run note's length in Airflow (its REST API and its database column)
NOTE_TAIL = "\n_The whole report: XCom `report_markdown` of the task `finalize`._\n"
SUMMARY_HEADING = "## Run summary"


def report_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ if env is None else env)
    if env.get(ENV_REPORT_DIR):
        return Path(env[ENV_REPORT_DIR])
    if env.get("AIRFLOW_HOME"):
        return Path(env["AIRFLOW_HOME"]) / "reports"
    return Path("reports")


def query_facets(
    client, index: str, fields: Iterable[str] = FACET_FIELD_NAMES, size: int = FACET_SIZE
) -> dict[str, list[tuple[str, int]]]:
    """Terms counts per field over ``index`` (one request); ``{}`` when the index does not exist."""
    fields = list(fields)
    body = {
        "size": 0,
        "track_total_hits": True,
        "aggs": {f"f{i}": {"terms": {"field": f, "size": size}} for i, f in enumerate(fields)},
    }
    resp = client.search(index=index, body=body, ignore_unavailable=True)
    aggs = resp.get("aggregations") or {}
    return {
        f: [(str(b["key"]), int(b["doc_count"])) for b in aggs.get(f"f{i}", {}).get("buckets", [])]
        for i, f in enumerate(fields)
    }


def render_markdown(
    *,
    dag_id: str,
    run_id: str,
    target: str,
    counts: Mapping[State, int],
    files_seen: int,
    facets: dict[str, list[tuple[str, int]]] | None = None,
    summary: str = "",
    verdict: str = "success",
    generated: datetime | None = None,
) -> str:
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"# seednews run `{run_id}`",
        "",
        f"- DAG: `{dag_id}`",
        f"- index: `{target}`",
        f"- verdict: **{verdict}**",
        f"- written: {when}",
        f"- seed files seen: {files_seen}",
        "",
        "## Files per outcome",
        "",
        "| outcome | files |",
        "| --- | ---: |",
    ]
    out += [f"| {state} | {n} |" for state, n in sorted(counts.items())] or ["| (none) | 0 |"]
    for field, label in FACET_FIELDS:
        buckets = (facets or {}).get(field)
        if buckets is None:
            continue
        out += [
            "",
            f"## Articles per {label.lower()} (whole index after this run)",
            "",
            f"| {label.lower()} | articles |",
            "| --- | ---: |",
        ]
        out += [f"| {_cell(k)} | {n} |" for k, n in buckets] or ["| (none) | 0 |"]
    if summary:
        out += ["", SUMMARY_HEADING, "", "```", summary.rstrip(), "```"]
    return "\n".join(out) + "\n"


def run_note(text: str, limit: int = NOTE_LIMIT) -> str:
    """The report as a DAG run's note: whole when it fits in ``limit`` characters; else without its run
    summary, and then only the whole lines that fit, followed by a line saying where the whole report is."""
    if len(text) <= limit:
        return text
    body = text.split("\n" + SUMMARY_HEADING, 1)[0].rstrip("\n") + "\n"
    kept: list[str] = []
    size = len(NOTE_TAIL)
    for line in body.splitlines(keepends=True):
        if size + len(line) > limit:
            break
        kept.append(line)
        size += len(line)
    return "".join(kept) + NOTE_TAIL


def write(directory: Path, run_id: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"seednews-{re.sub(r'[^A-Za-z0-9._-]+', '_', run_id)}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
