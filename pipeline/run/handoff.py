"""Handing a plan's batches to the tasks that process them (the DAG's ``plan`` -> ``process_batch``).

A batch crosses the task boundary (Airflow's XCom) as a ``Ticket`` of constant size: run and plan ids,
batch number, file count, the seed root and how many stored parts hold its files. The planned files
(``SeedFile`` rows: path, stat, content hash, ingest sequence, so the worker re-checks the same file and
does not re-derive it) and the plan's report (capped) live in OpenSearch, in the plan index
(``Settings.plan_index``), which every worker reaches: LocalExecutor processes and Celery workers on other
machines alike, sharing no disk.

- ``hand_out`` stores a plan and returns its tickets; ``take`` reads a ticket's batch (and, for the first
  batch, the plan's report). Documents have explicit ids (``<plan id>-<batch>-<part>``) and are read by
  id (real time, no refresh), so every retry of a batch reads the same files.
- A plan is stored under a fresh plan id: a re-run of ``plan`` (a cleared DAG run) stores a new plan, and
  its new tickets name only its own documents.
- The plan index stays bounded: ``hand_out`` deletes every stored plan of the alias before storing its
  own, so at most one run's plan (about one row per planned file) is kept. One run at a time per alias
  (the DAG's ``max_active_runs=1``) makes that safe; a ticket whose plan was deleted raises
  ``PlanNotFound`` (clear the run's ``plan`` task too).
- A dry run writes nothing to OpenSearch (it runs with no client: the DAG never connects for one), so its
  tickets carry the files and the report inline: a dry run's XCom grows with the number of files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.errors import PlanNotFound
from pipeline.run.plan import Batch, Plan
from pipeline.run.report import RunReport
from pipeline.stores.retry import read
from pipeline.times import utc_now

PART_FILES = 5000  # planned files per stored document (~0.5-1 MB of rows)
PLAN_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "run_id": {"type": "keyword"},
        "plan_id": {"type": "keyword"},
        "batch": {"type": "integer"},
        "part": {"type": "integer"},
        "created_at": {"type": "date"},
        "files": {"type": "object", "enabled": False},
        "report": {"type": "object", "enabled": False},
    },
}
"""Only the ids are indexed; the rows and the report are stored, never analysed."""


@dataclass(frozen=True)
class Ticket:
    """One batch as it crosses XCom: constant size, whatever the batch holds (a dry run's aside)."""

    run_id: str
    plan_id: str
    batch: int  # 0-based; batch 0 also carries the plan's report
    batches: int
    files: int
    root: str
    real_root: str
    parts: int  # stored documents holding the batch's files
    inline: dict[str, Any] | None = None  # a dry run's files ("files") and report ("report")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "plan_id": self.plan_id,
            "batch": self.batch,
            "batches": self.batches,
            "files": self.files,
            "root": self.root,
            "real_root": self.real_root,
            "parts": self.parts,
            "inline": self.inline,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ticket:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def doc_id(self, part: int) -> str:
        return f"{self.plan_id}-{self.batch}-{part}"

    @property
    def report_id(self) -> str:
        return f"{self.plan_id}-report"


def _parts(n: int) -> int:
    return -(-n // PART_FILES)


def _batches(plan: Plan) -> list[Batch]:
    """The plan's batches; one empty batch when there is no work (the report still rides on it)."""
    return plan.batches or [Batch(plan.root, plan.real_root, ())]


def hand_out(plan: Plan, client, settings: Settings, run_id: str, *, max_items: int) -> list[Ticket]:
    """Store ``plan`` (its files, and its report with each list capped at ``max_items``) for the workers and
    return one ticket per batch. With no client (a dry run) the tickets carry it all inline."""
    plan_id = uuid.uuid4().hex[:16]
    batches = _batches(plan)
    report = plan.report.to_dict(max_items=max_items)
    tickets = []
    for i, b in enumerate(batches):
        rows = [s.to_row() for s in b.seeds]
        inline = None if client is not None else {"files": rows, "report": report if i == 0 else None}
        parts = 0 if client is None else _parts(len(rows))
        tickets.append(Ticket(run_id, plan_id, i, len(batches), len(rows), b.root, b.real_root, parts, inline))
    if client is not None:
        _store(client, settings.plan_index, tickets, batches, report)
    return tickets


def _store(client, index: str, tickets: list[Ticket], batches: list[Batch], report: dict[str, Any]) -> None:
    from opensearchpy import helpers

    _ensure_index(client, index)
    client.indices.refresh(index=index)  # a plan stored a moment ago (a retried plan task) is deleted too
    client.delete_by_query(index=index, body={"query": {"match_all": {}}}, conflicts="proceed", refresh=True)
    now = utc_now()
    head = {"run_id": tickets[0].run_id, "plan_id": tickets[0].plan_id, "created_at": now}
    actions: list[dict[str, Any]] = [
        {"_index": index, "_id": tickets[0].report_id, "_source": {**head, "report": report}}
    ]
    for t, b in zip(tickets, batches, strict=True):
        for part in range(t.parts):
            rows = [s.to_row() for s in b.seeds[part * PART_FILES : (part + 1) * PART_FILES]]
            source = {**head, "batch": t.batch, "part": part, "files": rows}
            actions.append({"_index": index, "_id": t.doc_id(part), "_source": source})
    helpers.bulk(client, actions, chunk_size=8, max_retries=5)


def _ensure_index(client, index: str) -> None:
    if read(client, f"index {index}: exists", client.indices.exists, index=index):
        return
    body = {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}, "mappings": PLAN_MAPPING}
    try:
        client.indices.create(index=index, body=body)
    except Exception as exc:  # a concurrent creation won the race
        if "resource_already_exists" not in str(exc):
            raise


def take(ticket: Ticket, client, settings: Settings) -> tuple[Batch, RunReport | None]:
    """The batch a ticket names, and the plan's report for batch 0 (``None`` for the others)."""
    if ticket.inline is not None:
        rows, report = ticket.inline["files"], ticket.inline.get("report")
    else:
        rows, report = _load(client, settings.plan_index, ticket)
    batch = Batch.from_dict({"root": ticket.root, "real_root": ticket.real_root, "files": rows})
    if len(batch.seeds) != ticket.files:
        raise PlanNotFound(_gone(ticket, settings.plan_index))
    return batch, RunReport.from_dict(report) if report else None


def _load(client, index: str, ticket: Ticket) -> tuple[list[list[Any]], dict[str, Any] | None]:
    ids = [ticket.doc_id(p) for p in range(ticket.parts)] + ([ticket.report_id] if ticket.batch == 0 else [])
    if not ids:
        return [], None
    try:
        docs = read(client, f"plan {ticket.plan_id}: batch {ticket.batch}", client.mget, index=index, body={"ids": ids})
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404 or "index_not_found" in str(exc):
            raise PlanNotFound(_gone(ticket, index)) from exc
        raise
    found = {d["_id"]: d["_source"] for d in docs.get("docs", []) if d.get("found")}
    if any(i not in found or found[i].get("run_id") != ticket.run_id for i in ids):
        raise PlanNotFound(_gone(ticket, index))
    rows = [row for p in range(ticket.parts) for row in found[ticket.doc_id(p)]["files"]]
    return rows, found[ticket.report_id]["report"] if ticket.batch == 0 else None


def _gone(ticket: Ticket, index: str) -> str:
    return (
        f"the plan of run {ticket.run_id!r} (plan {ticket.plan_id}) is no longer in {index}: a later run "
        "replaced it; clear this run's plan task to plan it again"
    )
