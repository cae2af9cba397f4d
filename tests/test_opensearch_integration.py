"""Against a REAL OpenSearch node (see conftest): the sample seeds end up as faceted, searchable documents."""

from __future__ import annotations

import os
import shutil

import pytest

from pipeline.run.flow import RunOptions, ValidationFailed, run
from pipeline.stores import indices
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


def test_mapping_rejection_goes_to_dead_letters(settings, client, seed_dir):
    text = (seed_dir / "000_9af88004a1e871b6.txt").read_text(encoding="utf-8")
    (seed_dir / "000_9af88004a1e871b6.txt").write_text(
        text.replace("quality: 172", "quality: 99999999999"), encoding="utf-8"
    )
    report = _run(settings, client, seed_dir)
    assert report.indexed == 1 and report.n("dead_letter") == 1
    (failed,) = report.failed
    assert failed["http_status"] == 400 and "mapper_parsing_exception" in failed["reason"]
    assert failed["path"] == "000_9af88004a1e871b6.txt"
    (dl,) = client.search(index=settings.deadletter_index, body={"query": {"match_all": {}}})["hits"]["hits"]
    assert dl["_source"]["doc_id"] == failed["doc_id"] and '"quality": 99999999999' in dl["_source"]["document"]
    assert (dl["_source"]["seed_root"], dl["_source"]["seed_path"]) == (str(seed_dir), "000_9af88004a1e871b6.txt")


def test_full_rebuild_swaps_alias_and_failed_rebuild_keeps_old_index(settings, client, seed_dir):
    _run(settings, client, seed_dir)
    (old,) = indices.alias_indices(client, settings.alias)
    _run(settings, client, seed_dir, full_rebuild=True)
    (new,) = indices.alias_indices(client, settings.alias)
    assert new != old and indices.count(client, settings.alias) == 2

    text = (seed_dir / "000_9af88004a1e871b6.txt").read_text(encoding="utf-8")
    (seed_dir / "000_9af88004a1e871b6.txt").write_text(
        text.replace("quality: 172", "quality: 99999999999"), encoding="utf-8"
    )
    with pytest.raises(ValidationFailed, match="not promoted"):
        _run(settings, client, seed_dir, full_rebuild=True)
    assert indices.alias_indices(client, settings.alias) == [new]
    assert indices.count(client, settings.alias) == 2
