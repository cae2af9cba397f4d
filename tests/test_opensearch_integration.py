"""Against a REAL OpenSearch node (see conftest): the sample seeds end up as faceted, searchable documents."""

from __future__ import annotations

import os
import shutil

import pytest

from pipeline.errors import IndexManagementError, ValidationFailed
from pipeline.run.flow import prepare, run
from pipeline.run.options import RunOptions
from pipeline.stages.validate import INTEGER_MAX, INTEGER_MIN, MAX_KEY_BYTES, MAX_KEYWORD_BYTES
from pipeline.stores import indices
from pipeline.stores import ledger as lg
from pipeline.stores.ledger import Ledger
from tests import faultkit as fk
from tests.conftest import DATA


def _run(settings, client, seed_dir, **kw):
    kw.setdefault("check_images", False)
    return run(settings, RunOptions(seed_dir=str(seed_dir), **kw), client=client, emit=lambda _: None)


def _search(client, settings, query):
    return client.search(index=settings.alias, body={"query": query})["hits"]["hits"]


def test_sample_seeds_are_indexed_with_topic_facets(settings, client, seed_dir):
    report = _run(settings, client, seed_dir)
    assert (report.files_seen, report.indexed, report.quarantined, report.failed) == (2, 2, [], [])
    assert indices.count(client, settings.alias) == 2
    assert dict(indices.facet(client, settings.alias, "topics")) == {"AI": 2, "Computer Vision": 1}
    assert dict(indices.facet(client, settings.alias, "provider.name")) == {"TechCrunch": 1, "Common Dreams": 1}
    assert dict(indices.facet(client, settings.alias, "published")) == {"true": 1, "false": 1}


def test_repaired_em_dash_is_searchable(settings, client, seed_dir):
    _run(settings, client, seed_dir)
    hits = _search(client, settings, {"match_phrase": {"excerpt": "surveillance—a development"}})
    assert [h["_source"]["provider"]["name"] for h in hits] == ["Common Dreams"]
    assert "â€" not in hits[0]["_source"]["excerpt"]


def test_secured_blob_is_not_searchable(settings, client, seed_dir):
    _run(settings, client, seed_dir)
    docs = {h["_source"]["provider"]["name"]: h["_source"] for h in _search(client, settings, {"match_all": {}})}
    secured = docs["Common Dreams"]["secured"]
    piece = secured[8:40]
    assert piece.replace("+", "").replace("/", "").isalnum()
    for query in (
        {"query_string": {"query": f'"{piece}"'}},
        {"query_string": {"query": f"{secured[:12]}*"}},
        {"simple_query_string": {"query": piece}},
        {"multi_match": {"query": piece, "fields": ["*"], "lenient": True}},
    ):
        assert _search(client, settings, query) == [], query
    # ...but the blob is kept, byte for byte, for the application that reads _source
    assert secured in (seed_dir / "002_2c91f7d39cae87f0.txt").read_text(encoding="utf-8")


def test_running_twice_leaves_exactly_two_documents(settings, client, seed_dir):
    first = _run(settings, client, seed_dir)
    second = _run(settings, client, seed_dir)  # the ledger knows both files: nothing is re-parsed
    third = _run(settings, client, seed_dir, skip_unchanged=False)  # even so, ids make it idempotent
    assert (first.indexed, second.unchanged, second.indexed, third.indexed) == (2, 2, 0, 2)
    assert indices.count(client, settings.alias) == 2


def test_broken_seed_is_quarantined_and_the_rest_indexed(settings, client, seed_dir):
    shutil.copy(DATA / "seeds" / "bad" / "invalid_yaml.txt", seed_dir / "001_broken.txt")
    report = _run(settings, client, seed_dir)
    assert report.indexed == 2
    assert report.quarantined == [
        {
            "path": "001_broken.txt",
            "state": "quarantined",
            "stage": "yaml",
            "reason": "while scanning a quoted scalar at line 2, column 8: found unexpected end of stream at line 4, column 12",
        }
    ]
    assert "001_broken.txt: yaml: while scanning a quoted scalar" in report.render()
    assert indices.count(client, settings.alias) == 2


def test_the_copy_ingested_last_wins_across_batches_in_any_order(settings, client, tmp_path):
    """Files first seen in one run are ordered by mtime, then path: a.txt (newer) wins although its
    batch writes first."""
    body = '---\ntitle: "{t}"\npublishedDateTime: 2021-10-06\nwebUrl: "https://example.com/same"\n---\n'
    for name, title, mtime in (("a.txt", "newer", 2_000), ("b.txt", "older", 1_000)):
        (tmp_path / name).write_text(body.format(t=title), encoding="utf-8")
        os.utime(tmp_path / name, (mtime, mtime))
    report = _run(settings, client, tmp_path, max_batches=2)  # a.txt (newer) is written first
    assert [s["path"] for s in report.listed("duplicate")] == ["b.txt"] and report.indexed == 1
    (hit,) = _search(client, settings, {"match_all": {}})
    assert hit["_source"]["title"] == "newer"


REFUSED = "000_9af88004a1e871b6.txt"  # one of the two sample seeds


def test_mapping_rejection_goes_to_dead_letters(settings, client, seed_dir, monkeypatch):
    fk.refused_by_mapping(monkeypatch, REFUSED)
    report = _run(settings, client, seed_dir)
    assert report.indexed == 1 and report.n("dead_letter") == 1
    (failed,) = report.failed
    assert failed["http_status"] == 400 and "strict_dynamic_mapping_exception" in failed["reason"]
    assert failed["path"] == REFUSED
    (dl,) = client.search(index=settings.deadletter_index, body={"query": {"match_all": {}}})["hits"]["hits"]
    assert dl["_source"]["doc_id"] == failed["doc_id"] and '"sentiment": 0.7' in dl["_source"]["document"]
    assert (dl["_source"]["seed_root"], dl["_source"]["seed_path"]) == (str(seed_dir), REFUSED)


def test_values_the_mapping_refuses_are_quarantined_by_validation_not_dead_letters(settings, client, tmp_path):
    body = '---\ntitle: "{t}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://e.com/{t}"\n{x}\n---\n'
    cases = {
        "quality.txt": "quality: 3000000000",
        "long_name.txt": "? " + "k" * 60_000 + "\n: 1",
        "many_names.txt": "custom:\n" + "\n".join(f"  x{i}: {i}" for i in range(1000)),  # 1,001 names in all
        "edges.txt": f"quality: {INTEGER_MAX}\nheat: {INTEGER_MIN}\n? {'k' * MAX_KEY_BYTES}\n: 1\n"
        + "category: "
        + "c" * MAX_KEYWORD_BYTES,
    }
    for name, extra in cases.items():
        (tmp_path / name).write_text(body.format(t=name[:-4], x=extra), encoding="utf-8")
    report = _run(settings, client, tmp_path)
    assert report.counts == {"indexed": 1, "quarantined": 3} and report.ok, report.render()
    reasons = {q["path"]: q["reason"] for q in report.quarantined}
    assert reasons == {
        "quality.txt": "field 'quality' must be an integer between -2147483648 and 2147483647, got integer 3000000000",
        "long_name.txt": f"field name '{'k' * 58}… is too long: 60,000 bytes of UTF-8, at most 50,000",
        "many_names.txt": "too many unknown fields: more than 1,000 field names at any depth",
    }
    (hit,) = _search(client, settings, {"match_all": {}})  # the values at the limits are what the node accepts
    assert (hit["_source"]["quality"], len(hit["_source"]["category"])) == (INTEGER_MAX, MAX_KEYWORD_BYTES)
    assert not client.indices.exists(index=settings.deadletter_index)


def test_a_rebuild_with_a_dead_letter_is_promoted_and_names_it(settings, client, seed_dir, monkeypatch):
    _run(settings, client, seed_dir)
    (old,) = indices.alias_indices(client, settings.alias)
    fk.refused_by_mapping(monkeypatch, REFUSED)
    report = _run(settings, client, seed_dir, full_rebuild=True)
    (new,) = indices.alias_indices(client, settings.alias)
    assert new != old and report.counts == {"indexed": 1, "dead_letter": 1}
    assert indices.count(client, settings.alias) == 1
    text = report.render()
    assert f"  dead letter (1):\n    - {REFUSED}: index: HTTP 400: " in text and "(kept for replay)" in text
    assert "  note: rebuild validated: 2 files planned = 1 indexed + 1 dead letter\n" in text
    assert (
        "  note: promoted without 1 article OpenSearch refused (the dead letters listed above, kept in "
        f"{settings.deadletter_index}): fix the cause, then replay them (--replay-dead-letters, or the DAG's "
        "replay_dead_letters)\n"
    ) in text
    assert Ledger(client, settings.ledger_index).counts(str(seed_dir)) == {"indexed": 1, "dead_letter": 1}
    # the dead letter of the promoted rebuild replays once the cause is fixed
    client.indices.put_mapping(index=settings.alias, body={"properties": {"sentiment": {"type": "float"}}})
    replayed = _run(settings, client, seed_dir, replay_dead_letters=True)
    assert (replayed.indexed, replayed.failed) == (1, []) and indices.count(client, settings.alias) == 2


def test_full_rebuild_swaps_alias_and_failed_rebuild_keeps_old_index(settings, client, seed_dir, monkeypatch):
    _run(settings, client, seed_dir)
    (old,) = indices.alias_indices(client, settings.alias)
    _run(settings, client, seed_dir, full_rebuild=True)
    (new,) = indices.alias_indices(client, settings.alias)
    assert new != old and indices.count(client, settings.alias) == 2
    (served_ledger,) = indices.alias_indices(client, settings.ledger_index)
    pairs = sorted(client.indices.get(index=f"{settings.index_base}*").keys())

    fk.busy_for(monkeypatch, REFUSED)  # a failure that may pass holds the rebuild back
    with pytest.raises(ValidationFailed) as err:
        _run(settings, client, seed_dir, full_rebuild=True)
    message = str(err.value)
    stamp = message.split(f"rebuild index {settings.index_base}-v")[1].split(" ")[0]
    assert message == (
        f"rebuild index {settings.index_base}-v{stamp} not promoted: 1 documents failed to index for a reason "
        "that may pass (cluster busy or unreachable): run the rebuild again; removed the new index pair "
        f"{settings.index_base}-v{stamp} and {settings.ledger_index}-v{stamp}; alias {settings.alias} still "
        "serves the old index and ledger"
    )
    assert indices.alias_indices(client, settings.alias) == [new]
    assert indices.alias_indices(client, settings.ledger_index) == [served_ledger]
    assert indices.count(client, settings.alias) == 2
    assert sorted(client.indices.get(index=f"{settings.index_base}*").keys()) == pairs  # nothing left behind


def test_the_served_pair_is_never_dropped(settings, client, seed_dir):
    _run(settings, client, seed_dir)
    (served,) = indices.alias_indices(client, settings.alias)
    (ledger,) = indices.alias_indices(client, settings.ledger_index)
    with pytest.raises(IndexManagementError, match=f"not deleting {served}, {ledger}: an alias serves it"):
        indices.drop_unpromoted(client, settings.index_base, served, {settings.ledger_index: ledger})
    assert indices.count(client, settings.alias) == 2


def test_a_rebuild_prepared_again_by_the_same_run_leaves_one_new_empty_index(settings, client, seed_dir):
    """The DAG's ``plan`` task prepares a rebuild's index and is retried as a whole: a second try of the same
    run drops what its first try created (and filled) instead of leaving a second new index behind; another
    run's index and the served one are not touched."""
    _run(settings, client, seed_dir)
    (served,) = indices.alias_indices(client, settings.alias)
    other = prepare(client, settings, RunOptions(seed_dir="", full_rebuild=True, run_id="manual__other"))
    first = prepare(client, settings, RunOptions(seed_dir="", full_rebuild=True, run_id="manual__this"))
    client.index(index=first, id="x", body={"title": "from the first try"}, refresh=True)
    second = prepare(client, settings, RunOptions(seed_dir="", full_rebuild=True, run_id="manual__this"))
    versions = sorted(client.indices.get(index=f"{settings.index_base}-v*").keys())
    assert second != first and versions == sorted([served, other, second])
    ledgers = sorted(client.indices.get(index=f"{settings.ledger_index}-v*").keys())
    assert ledgers == sorted(lg.paired_name(i, settings.index_base, settings.ledger_index) for i in versions)
    assert indices.count(client, second) == 0
    assert indices.alias_indices(client, settings.alias) == [served] and indices.count(client, settings.alias) == 2
    # a run that prepares without an id (or a later run) drops nothing
    third = prepare(client, settings, RunOptions(seed_dir="", full_rebuild=True))
    assert sorted(client.indices.get(index=f"{settings.index_base}-v*").keys()) == sorted([*versions, third])
