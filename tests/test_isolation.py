"""No seed stops a run: the per-seed boundary (``pipeline.run.seedpath``) as a structural guarantee.

Units: any exception on one seed's path becomes that seed's ``internal_error`` outcome, a stray
``SeedError`` is still a quarantine, infrastructure errors still fail the task. Integration (real node):
a fault injected into ``normalize`` (``tests/faultinject/sitecustomize.py``, so it fires inside parse
worker processes and Airflow task processes too) hits one seed among 1,000 good ones; every other seed
is indexed, the run fails at the end, and the next run (bug fixed) indexes the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.errors import ParseWorkerLost, SeedError
from pipeline.run import seedpath
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.run.seedpath import build_documents
from pipeline.sources.folder import hash_seed, walk
from pipeline.stores.ledger import Ledger
from pipeline.types import SeedFile
from tests import faultkit as fk
from tests.conftest import ROOT, SAMPLE_SEEDS

FAULTS = ROOT / "tests" / "faultinject"


def _seeds(folder: Path) -> list[SeedFile]:
    return [h for s in walk(folder) if isinstance(s, SeedFile) and isinstance(h := hash_seed(s, 1 << 20), SeedFile)]


def _fail_on(monkeypatch, exc: BaseException, title: str = "BOOM") -> None:
    real = seedpath.normalize

    def normalize(record):
        if title in record.fields["title"]:
            raise exc
        return real(record)

    monkeypatch.setattr(seedpath, "normalize", normalize)


def _folder(tmp_path: Path, boom: str = "BOOM") -> Path:
    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 3, tag="iso")
    (folder / "s00001.txt").write_text(
        (folder / "s00001.txt").read_text().replace('title: "T 1"', f'title: "{boom} 1"'), encoding="utf-8"
    )
    return folder


def test_any_exception_on_one_seed_is_that_seeds_internal_error(monkeypatch, tmp_path, caplog):
    _fail_on(monkeypatch, KeyError("secret-looking value"))
    report = RunReport()
    docs, outcomes = build_documents(_seeds(_folder(tmp_path)), RunOptions(seed_dir=str(tmp_path)), report)
    assert sorted(d.seed.rel for d in docs) == ["s00000.txt", "s00002.txt"]
    (bad,) = outcomes
    assert (bad.seed.rel, bad.state, bad.stage) == ("s00001.txt", "internal_error", "normalize")
    assert bad.reason.startswith("internal error in normalize: KeyError at test_isolation.py:")
    assert "secret-looking value" not in bad.reason  # the message may quote the file: never in the reason
    assert "Traceback" in caplog.text and "secret-looking value" in caplog.text  # ...but the log has it all


def test_a_stray_seed_error_is_still_a_quarantine_with_its_reason(monkeypatch, tmp_path):
    _fail_on(monkeypatch, SeedError("validate", "field 'x' is odd"))
    _, (bad,) = build_documents(_seeds(_folder(tmp_path)), RunOptions(seed_dir=str(tmp_path)), RunReport())
    assert (bad.state, bad.stage, bad.reason) == ("quarantined", "validate", "field 'x' is odd")


@pytest.mark.parametrize(
    "exc",
    [ParseWorkerLost("gone"), MemoryError(), ConnectionResetError("reset")],
    ids=["our-infrastructure-error", "memory", "connection"],
)
def test_infrastructure_errors_still_fail_the_task(monkeypatch, tmp_path, exc):
    _fail_on(monkeypatch, exc)
    with pytest.raises(type(exc)):
        build_documents(_seeds(_folder(tmp_path)), RunOptions(seed_dir=str(tmp_path)), RunReport())


def test_a_client_library_error_is_infrastructure():
    from opensearchpy.exceptions import ConnectionError as OSConnectionError

    assert seedpath.is_infrastructure(OSConnectionError("N/A", "down", None))
    assert not seedpath.is_infrastructure(IndexError("string index out of range"))


def test_the_report_fails_the_run_and_says_why():
    from dataclasses import replace

    from pipeline.types import SeedFile, SeedOutcome, internal_error

    seed = SeedFile("/r", "a.txt", "/r", "a.txt", 1)
    report = RunReport()
    report.add(SeedOutcome(replace(seed, rel="b.txt"), "indexed"))
    try:
        raise IndexError("x")
    except IndexError as exc:
        report.add(internal_error(seed, "parse", exc))
    assert not report.ok
    first = report.render().splitlines()[0]
    assert "1 indexed, 1 internal error" in first and "NOT OK: 1 seed files met an internal error" in first
    assert "  internal error (1):" in report.render()


# ----------------------------------------------------------------------------- a real node, a real CLI
def _cli(folder: Path, url: str, index: str, fault: str | None) -> tuple[int, str, str]:
    """The CLI as a user runs it, with 2 parse workers; ``fault``: the title that makes ``normalize`` raise
    (``PYTHONPATH`` starts with the fault-injection folder, so its sitecustomize loads in every process)."""
    env = {**os.environ, "OPENSEARCH_URL": url, "SEEDNEWS_PARSE_WORKERS": "2", "PYTHONPATH": str(ROOT)}
    env.pop("SEEDNEWS_FAULT_TITLE", None)
    if fault:
        env.update(SEEDNEWS_FAULT_TITLE=fault, PYTHONPATH=os.pathsep.join([str(FAULTS), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(folder), "--skip-images", "--index", index, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr, done.stdout  # stdout: the --json report only


def _json_report(stdout: str) -> dict:
    return json.loads(stdout)


def test_one_bug_among_1000_seeds_in_parse_workers_fails_the_run_at_its_end(opensearch_url, tmp_path):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 1000, tag="isolation")
    for p in SAMPLE_SEEDS.iterdir():
        (folder / p.name).write_bytes(p.read_bytes().replace(b'\ntitle: "', b'\ntitle: "BOOM ', 1))
    index = f"iso-{uuid.uuid4().hex[:8]}"
    settings = Settings(opensearch_url=opensearch_url, index_base=index)
    client = make_client(settings)
    try:
        code, out, stdout = _cli(folder, opensearch_url, index, fault="BOOM")
        assert code == 1, out[-3000:]
        assert "parsing in 2 worker processes" in out
        assert "1002 seed files seen: 1000 indexed, 2 internal error" in out, out[-3000:]
        assert "NOT OK: 2 seed files met an internal error" in out
        assert "internal error in normalize: IndexError at sitecustomize.py:" in out
        assert "injected fault: string index out of range" in out  # the traceback, in the log
        report = _json_report(stdout)
        assert report["counts"] == {"indexed": 1000, "internal_error": 2}
        client.indices.refresh(index=settings.alias)
        assert client.count(index=settings.alias)["count"] == 1000
        states = {e.path: e.state for e in Ledger(client, settings.ledger_index).entries_for_root(str(folder)).values()}
        assert sorted(p for p, s in states.items() if s == "internal_error") == sorted(
            p.name for p in SAMPLE_SEEDS.iterdir()
        )
        # the bug is fixed: the next run tries exactly those files again, and the run is ok
        code, out, _ = _cli(folder, opensearch_url, index, fault=None)
        assert code == 0, out[-3000:]
        assert "1002 seed files seen: 2 indexed, 1000 unchanged" in out, out[-3000:]
        client.indices.refresh(index=settings.alias)
        assert client.count(index=settings.alias)["count"] == 1002
    finally:
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=index, ignore=[404])
        client.close()


def test_one_bug_in_a_dag_run_fails_finalize_after_every_other_seed_is_indexed(airflow_env, opensearch_url, tmp_path):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client
    from tests.test_dag import _dags_test

    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 1000, tag="isodag")
    for p in SAMPLE_SEEDS.iterdir():
        (folder / p.name).write_bytes(p.read_bytes().replace(b'\ntitle: "', b'\ntitle: "BOOM ', 1))
    index = f"isodag-{uuid.uuid4().hex[:8]}"
    conf = {"seed_dir": str(folder), "index": index, "max_batches": 2, "skip_images": True}
    env = {
        **airflow_env,
        "SEEDNEWS_FAULT_TITLE": "BOOM",
        "SEEDNEWS_PARSE_WORKERS": "2",
        "PYTHONPATH": os.pathsep.join([str(FAULTS), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    client = make_client(Settings(opensearch_url=opensearch_url, index_base=index))
    try:
        out = _dags_test(env, opensearch_url, conf)
        log = out.stdout + out.stderr
        # every batch task succeeded: the bug became two outcomes, not a failed (and retried) batch
        assert "1002 seed files seen: 1000 indexed, 2 internal error" in log, log[-4000:]
        assert "internal error in normalize: IndexError at sitecustomize.py:" in log
        assert "2 seed files met an internal error" in log  # finalize's failure says why
        assert "state=failed" in log and "process_batch" in log
        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == 1000
    finally:
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=index, ignore=[404])
        client.close()


def test_a_bug_preparing_one_image_url_is_its_documents_outcome(monkeypatch):
    from pipeline.config import Settings
    from pipeline.run import flow
    from pipeline.stages.images import checker
    from pipeline.types import Document

    real = checker.prepare_url

    def prepare_url(raw, base):
        if "boom" in raw:
            raise IndexError("string index out of range")
        return real(raw, base)

    monkeypatch.setattr(checker, "prepare_url", prepare_url)
    seed = SeedFile("/r", "a.txt", "/r", "a.txt", 1)
    bad = Document("1", {"title": "a", "images": [{"url": "http://[1]@/boom.jpg"}]}, seed, 1)
    good = Document("2", {"title": "b", "images": [{"url": "http://127.0.0.1:9/x.jpg"}]}, replace(seed, rel="b.txt"), 1)
    report = RunReport()
    docs, outcomes = flow.annotate_images([bad, good], None, Settings(), RunOptions(seed_dir="unused"), report)
    assert [d.id for d in docs] == ["2"] and docs[0].source["images"][0]["check"]["status"] == "blocked"
    (o,) = outcomes
    assert (o.seed.rel, o.state, o.stage) == ("a.txt", "internal_error", "images")
    assert o.reason.startswith("internal error in images: IndexError at test_isolation.py:")
    assert report.images["blocked"] == 1
