"""The DAG's hand-off of planned batches (``pipeline.run.handoff``): a ticket of constant size crosses
XCom, the files are stored in OpenSearch and read back the same by every retry; a dry run carries them
inline; a replaced plan fails the stale ticket instead of processing other files."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import PlanNotFound
from pipeline.run import handoff
from pipeline.run.handoff import Ticket, hand_out, take
from pipeline.run.plan import Batch, Plan
from pipeline.run.report import RunReport
from pipeline.types import SeedFile, SeedOutcome

ROOT = "/seeds"


def plan_of(n: int, batches: int = 4) -> Plan:
    seeds = [
        SeedFile(ROOT, f"d/{i:06d}.txt", ROOT, f"d/{i:06d}.txt", 100 + i, i, i, i, f"{i:064x}", i) for i in range(n)
    ]
    size = -(-n // batches)
    report = RunReport(target="t")
    report.add(SeedOutcome(seeds[0], "unchanged"))
    return Plan(ROOT, ROOT, [Batch(ROOT, ROOT, tuple(seeds[i : i + size])) for i in range(0, n, size)], report)


def xcom_bytes(tickets: list[Ticket]) -> list[int]:
    return [len(json.dumps(t.to_dict())) for t in tickets]


def test_stored_tickets_are_constant_in_size_and_read_back_the_same_files(client, settings, monkeypatch):
    monkeypatch.setattr(handoff, "PART_FILES", 300)  # several stored parts per batch
    small, big = plan_of(40), plan_of(2000)
    small_t = hand_out(small, client, settings, "run-1", max_items=5)
    big_t = hand_out(big, client, settings, "run-1", max_items=5)
    assert max(xcom_bytes(big_t)) <= max(xcom_bytes(small_t)) + 4  # only the counts gain digits
    assert [t.parts for t in big_t] == [2, 2, 2, 2]
    for t, b in zip(big_t, big.batches, strict=True):
        for _ in range(2):  # a retry reads the same files
            got, report = take(Ticket.from_dict(json.loads(json.dumps(t.to_dict()))), client, settings)
            assert got == b
            assert (report is not None) == (t.batch == 0)
    _, report = take(big_t[0], client, settings)
    assert report is not None and report.n("unchanged") == 1
    with pytest.raises(PlanNotFound, match="clear this run's plan task"):  # replaced by the later plan
        take(small_t[0], client, settings)


def test_a_plan_without_work_hands_out_one_empty_batch_with_the_report(client, settings):
    empty = Plan(ROOT, ROOT, [], plan_of(1).report)
    (t,) = hand_out(empty, client, settings, "run-2", max_items=5)
    batch, report = take(t, client, settings)
    assert batch.seeds == () and batch.root == ROOT and report is not None and report.n("unchanged") == 1


def test_a_dry_run_carries_its_files_inline_and_writes_nothing(settings):
    p = plan_of(10, batches=2)
    tickets = hand_out(p, None, settings, "dry", max_items=5)
    assert [t.parts for t in tickets] == [0, 0]
    for t, b in zip(tickets, p.batches, strict=True):
        got, report = take(Ticket.from_dict(json.loads(json.dumps(t.to_dict()))), None, settings)
        assert got == b and (report is not None) == (t.batch == 0)
