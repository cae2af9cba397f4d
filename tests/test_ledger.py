"""The ledger against a REAL OpenSearch node: incremental discovery, changed files, quarantine pick-up,
dead letters and replay."""

from __future__ import annotations

import os
import shutil

from pipeline.run import seedpath
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.run.tuning import Tuning
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger
from pipeline.types import entry_key
from tests import faultkit as fk
from tests.conftest import DATA

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "{url}"\ntopics: [{topic}]\n---\n'


def _write(folder, name, title="T", url="https://example.com/a", topic="AI", mtime=None):
    path = folder / name
    path.write_text(SEED.format(title=title, url=url, topic=topic), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _run(settings, client, folder, **kw):
    kw.setdefault("check_images", False)
    return run(settings, RunOptions(seed_dir=str(folder), **kw), client=client, emit=lambda _: None)


def _ledger(settings, client):
    return Ledger(client, settings.ledger_index)


def _docs(client, settings):
    client.indices.refresh(index=settings.alias)
    hits = client.search(index=settings.alias, body={"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    return sorted((h["_source"]["url"], h["_source"]["title"]) for h in hits)


def test_unchanged_files_are_not_reparsed_and_changed_ones_update_in_place(settings, client, tmp_path, monkeypatch):
    _write(tmp_path, "a.txt", "first", "https://example.com/a", mtime=1_000)
    _write(tmp_path, "b.txt", "bee", "https://example.com/b", mtime=1_000)
    assert _run(settings, client, tmp_path).indexed == 2

    parsed = []
    real_parse = seedpath.parse_bytes
    monkeypatch.setattr(
        seedpath, "parse_bytes", lambda seed, data, cfg: parsed.append(seed.rel) or real_parse(seed, data, cfg)
    )
    _write(tmp_path, "a.txt", "second", "https://example.com/a", mtime=500)  # older mtime (cp -p): still an edit
    report = _run(settings, client, tmp_path)
    assert parsed == ["a.txt"]  # b.txt is unchanged: never re-parsed
    assert (report.unchanged, report.indexed) == (1, 1)
    assert _docs(client, settings) == [("https://example.com/a", "second"), ("https://example.com/b", "bee")]
    assert _ledger(settings, client).counts(str(tmp_path)) == {"indexed": 2}


def test_quarantined_file_is_recorded_and_picked_up_once_fixed(settings, client, tmp_path):
    _write(tmp_path, "good.txt", url="https://example.com/good")
    shutil.copy(DATA / "seeds" / "bad" / "missing_title.txt", tmp_path / "bad.txt")
    _run(settings, client, tmp_path)
    ledger = _ledger(settings, client)
    root = str(tmp_path)
    (entry,) = ledger.lookup([entry_key(root, "bad.txt")]).values()
    assert (entry.state, entry.stage, entry.reason) == ("quarantined", "validate", "required field 'title' is missing")
    assert (tmp_path / "bad.txt").exists()  # nothing is moved or deleted

    again = _run(settings, client, tmp_path)
    assert (again.unchanged, again.quarantined) == (2, [])  # unchanged broken file: not re-parsed

    _write(tmp_path, "bad.txt", "now fixed", "https://example.com/fixed")
    fixed = _run(settings, client, tmp_path)
    assert (fixed.unchanged, fixed.indexed) == (1, 1)
    assert ledger.counts(root) == {"indexed": 2}


def test_changed_article_url_removes_the_old_document(settings, client, tmp_path):
    _write(tmp_path, "a.txt", "v1", "https://example.com/old-url", mtime=1_000)
    _run(settings, client, tmp_path)
    _write(tmp_path, "a.txt", "v2", "https://example.com/new-url", mtime=2_000)
    report = _run(settings, client, tmp_path)
    assert report.removed == 1
    assert _docs(client, settings) == [("https://example.com/new-url", "v2")]
    again = _run(settings, client, tmp_path)
    assert (again.unchanged, again.removed) == (1, 0)


def test_dead_letter_then_fix_then_replay(settings, client, tmp_path, monkeypatch):
    """A code/mapping skew: the pipeline emits a field the strict mapping does not know. The document is
    refused (400), kept whole in the dead-letter index, the others are indexed; once the mapping is
    fixed, replay indexes it and resolves the dead letter."""
    _write(tmp_path, "a.txt", "skewed", "https://example.com/skew")
    _write(tmp_path, "b.txt", "fine", "https://example.com/fine")
    fk.refused_by_mapping(monkeypatch, "a.txt")
    report = _run(settings, client, tmp_path)
    assert report.indexed == 1 and report.n("dead_letter") == 1
    (failed,) = report.failed
    assert failed["http_status"] == 400 and "strict_dynamic_mapping_exception" in failed["reason"]
    assert failed["state"] == "dead_letter"
    root = str(tmp_path)
    assert _ledger(settings, client).counts(root) == {"indexed": 1, "dead_letter": 1}
    assert "(kept for replay)" in report.render()

    # replay before the fix: still refused, still pending
    still = _run(settings, client, tmp_path, replay_dead_letters=True)
    assert len(still.failed) == 1 and indices.count(client, settings.alias) == 1

    # the fix: the mapping learns the field; replay lands it
    client.indices.put_mapping(index=settings.alias, body={"properties": {"sentiment": {"type": "float"}}})
    replayed = _run(settings, client, tmp_path, replay_dead_letters=True)
    assert replayed.failed == [] and replayed.indexed == 1 and replayed.unchanged == 1
    assert [t for _, t in _docs(client, settings)] == ["fine", "skewed"]
    letters = client.search(index=settings.deadletter_index, body={"query": {"match_all": {}}})["hits"]["hits"]
    assert [(d["_source"]["pending"], d["_source"]["resolution"]) for d in letters] == [(False, "replayed")]
    assert _ledger(settings, client).counts(root) == {"indexed": 2}


def test_full_rebuild_validates_against_the_ledger(settings, client, tmp_path):
    for i in range(5):
        _write(tmp_path, f"{i}.txt", f"t{i}", f"https://example.com/{i}")
    _run(settings, client, tmp_path)
    report = _run(settings, client, tmp_path, full_rebuild=True)  # processes everything, ledger or not
    assert report.indexed == 5 and report.unchanged == 0
    assert any(n.startswith("alias ") for n in report.notes)
    assert indices.count(client, settings.alias) == 5


def test_old_indices_beyond_retention_are_removed(settings, client, tmp_path):
    _write(tmp_path, "a.txt")
    _run(settings, client, tmp_path)
    for _ in range(4):
        _run(settings, client, tmp_path, full_rebuild=True)
    versions = sorted(client.indices.get(index=indices.versions_pattern(settings.index_base)).keys())
    assert len(versions) == settings.retention + 1  # the serving index + `retention` previous ones
    assert indices.alias_indices(client, settings.alias) == [versions[-1]]


def test_big_batches_are_processed_in_chunks(settings, client, tmp_path):
    for i in range(25):
        _write(tmp_path, f"{i:02}.txt", f"t{i}", f"https://example.com/{i}")
    # the same article twice, in different chunks: the newer file (first seen together) wins
    _write(tmp_path, "00_dup.txt", "old copy", "https://example.com/24", mtime=1_000)
    lines = []
    report = run(
        settings,
        RunOptions(seed_dir=str(tmp_path), check_images=False, max_batches=1, tuning=Tuning(chunk_seeds=10)),
        client=client,
        emit=lines.append,
    )
    assert "batch progress: 10/26 files" in lines and "batch progress: 26/26 files" in lines
    assert (report.indexed, report.n("duplicate")) == (25, 1) and report.failed == []
    assert [d["path"] for d in report.listed("duplicate")] == ["00_dup.txt"]
    assert indices.count(client, settings.alias) == 25
    assert dict(_docs(client, settings))["https://example.com/24"] == "t24"
