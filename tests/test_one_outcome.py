"""One seed, one outcome, against a REAL node: no file, file name or folder shape stops a run or loses an
article, and the run never says ok while it does. One test per case seen when the pipeline was tried
as a new user would (issue "One seed, one outcome")."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace

import pytest

from pipeline.errors import ValidationFailed, VanishedFolderError
from pipeline.run.flow import plan, prepare, process_batch, run
from pipeline.run.options import RunOptions
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger
from pipeline.types import entry_key
from tests import faultkit as fk
from tests.conftest import SAMPLE_SEEDS

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "{url}"\n{extra}---\n'
QUIET = lambda _: None  # noqa: E731


def write(path, title="T", url="https://example.com/a", extra="", mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SEED.format(title=title, url=url, extra=extra), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def go(settings, client, folder, **kw):
    kw.setdefault("check_images", False)
    return run(settings, RunOptions(seed_dir=str(folder), **kw), client=client, emit=QUIET)


def docs(client, settings) -> dict[str, tuple[str, str]]:
    """url -> (title, seed path) of every document the alias serves."""
    client.indices.refresh(index=settings.alias)
    hits = client.search(index=settings.alias, body={"size": 1000})["hits"]["hits"]
    return {h["_source"]["url"]: (h["_source"]["title"], h["_source"]["seed"]["path"]) for h in hits}


def ledger_states(client, settings, root) -> dict[str, str]:
    ledger = Ledger(client, settings.ledger_index)
    return {e.path: e.state for e in ledger.entries_for_root(str(root)).values()}


# ----------------------------------------------------------------------------- bad values
BAD_VALUES = {
    "int_tag.txt": "quality: !!int abc\n",
    "bool_tag.txt": "published: !!bool maybe\n",
    "timestamp_tag.txt": "category: !!timestamp 2021-02-30\n",
    "huge_int.txt": "heat: " + "9" * 5000 + "\n",
    "binary_tag.txt": "excerpt: !!binary aGVsbG8=\n",
    "set_tag.txt": "topics: !!set {a, b}\n",
}


def test_a_bad_value_quarantines_its_file_and_never_its_neighbours(settings, client, tmp_path):
    for i, (name, extra) in enumerate(BAD_VALUES.items()):
        write(tmp_path / name, f"bad {i}", f"https://example.com/bad{i}", extra)
    (tmp_path / "early_date.txt").write_text(
        '---\ntitle: x\npublishedDateTime: "0001-01-01T00:00:00+01:00"\nwebUrl: "https://example.com/old"\n---\n'
    )
    for p in SAMPLE_SEEDS.iterdir():
        shutil.copy(p, tmp_path / p.name)
    report = go(settings, client, tmp_path)
    assert report.counts == {"indexed": 2, "quarantined": len(BAD_VALUES) + 1} and report.ok
    reasons = {q["path"]: (q["stage"], q["reason"]) for q in report.quarantined}
    assert set(reasons) == set(BAD_VALUES) | {"early_date.txt"}
    assert reasons["early_date.txt"] == (
        "validate",
        "field 'publishedDateTime' is not a date-time: '0001-01-01T00:00:00+01:00' (year 1 is outside 1800..2200)",
    )
    assert all(stage == "yaml" for name, (stage, _) in reasons.items() if name != "early_date.txt"), reasons
    assert all(len(r) <= 300 for _, r in reasons.values())
    assert indices.count(client, settings.alias) == 2


# ----------------------------------------------------------------------------- bad names
def test_odd_names_and_link_loops_get_an_outcome_and_the_run_goes_on(settings, client, tmp_path):
    shutil.copy(SAMPLE_SEEDS / "000_9af88004a1e871b6.txt", os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"))
    os.symlink("loop.txt", tmp_path / "loop.txt")
    os.symlink("nowhere.txt", tmp_path / "dangling.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    shutil.copy(SAMPLE_SEEDS / "002_2c91f7d39cae87f0.txt", tmp_path / "good.txt")
    report = go(settings, client, tmp_path)
    assert {q["path"]: q["reason"] for q in report.quarantined} == {
        "caf\\xe9.txt": "file name 'caf\\xe9.txt' is not valid UTF-8; rename it",
        "loop.txt": "symbolic link loop",
        "dangling.txt": "broken symbolic link (its target does not exist)",
        "pipe.txt": "a FIFO, not a regular file",
    }
    assert report.indexed == 1
    assert ledger_states(client, settings, tmp_path) == {
        "caf\\xe9.txt": "quarantined",
        "loop.txt": "quarantined",
        "dangling.txt": "quarantined",
        "pipe.txt": "quarantined",
        "good.txt": "indexed",
    }
    again = go(settings, client, tmp_path)
    assert again.counts == {"unchanged": 5}


# ----------------------------------------------------------------------------- folder shapes
@pytest.mark.parametrize("how", ["relative", "absolute", "symlinked"])
def test_equal_file_names_in_nested_folders_are_two_files(settings, client, tmp_path, monkeypatch, how):
    real = tmp_path / "drops" / "2026-11-22"
    write(real / "a" / "index.txt", "A", "https://example.com/a")
    write(real / "b" / "index.txt", "B", "https://example.com/b")
    os.symlink(real, tmp_path / "current")
    monkeypatch.chdir(tmp_path)
    folder = {"relative": "drops/2026-11-22", "absolute": str(real), "symlinked": "current"}[how]
    first = go(settings, client, folder)
    assert first.counts == {"indexed": 2}
    again = go(settings, client, folder)
    assert (again.counts, again.removed) == ({"unchanged": 2}, 0)
    assert docs(client, settings) == {
        "https://example.com/a": ("A", "a/index.txt"),
        "https://example.com/b": ("B", "b/index.txt"),
    }


def test_a_moving_current_link_is_one_folder(settings, client, tmp_path):
    day1, day2 = tmp_path / "d1", tmp_path / "d2"
    write(day1 / "a.txt", "A", "https://example.com/a")
    write(day1 / "b.txt", "B", "https://example.com/b")
    shutil.copytree(day1, day2)
    write(day2 / "b.txt", "B2", "https://example.com/b")
    (day2 / "a.txt").unlink()
    os.symlink(day1, tmp_path / "current")
    go(settings, client, tmp_path / "current")
    (tmp_path / "current").unlink()
    os.symlink(day2, tmp_path / "current")
    report = go(settings, client, tmp_path / "current")
    assert (report.counts, report.removed) == ({"indexed": 1, "deleted": 1}, 1)
    assert docs(client, settings) == {"https://example.com/b": ("B2", "b.txt")}


# ----------------------------------------------------------------------------- versions and deletes
def test_an_edit_wins_whatever_its_mtime_and_a_future_mtime_breaks_nothing(settings, client, tmp_path):
    write(tmp_path / "a.txt", "v1", "https://example.com/a", mtime=2_000_000_000)
    go(settings, client, tmp_path)
    write(tmp_path / "a.txt", "v2 copied with cp -p", "https://example.com/a", mtime=1_000)
    assert go(settings, client, tmp_path).counts == {"indexed": 1}
    assert docs(client, settings)["https://example.com/a"][0] == "v2 copied with cp -p"
    write(tmp_path / "f.txt", "from the future", "https://example.com/f", mtime=4_000_000_000)
    go(settings, client, tmp_path)
    write(tmp_path / "f.txt", "moved", "https://example.com/f2", mtime=4_100_000_000)
    report = go(settings, client, tmp_path)  # used to raise 409 on the delete of the old URL
    assert report.removed == 1 and "https://example.com/f" not in docs(client, settings)


def test_an_article_another_file_still_carries_is_not_deleted(settings, client, tmp_path):
    write(tmp_path / "b.txt", "from b", "https://example.com/x")
    go(settings, client, tmp_path)
    write(tmp_path / "a.txt", "from a", "https://example.com/x")  # ingested later: a wins, b is a duplicate
    go(settings, client, tmp_path)
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "indexed", "b.txt": "duplicate"}
    assert docs(client, settings) == {"https://example.com/x": ("from a", "a.txt")}

    write(tmp_path / "a.txt", "a moved on", "https://example.com/y")  # a no longer carries x
    report = go(settings, client, tmp_path)
    assert report.removed == 0
    assert docs(client, settings) == {
        "https://example.com/x": ("from b", "b.txt"),  # re-sourced from b
        "https://example.com/y": ("a moved on", "a.txt"),
    }
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "indexed", "b.txt": "indexed"}

    (tmp_path / "b.txt").unlink()
    report = go(settings, client, tmp_path)
    assert (report.n("deleted"), report.removed) == (1, 1)
    assert docs(client, settings) == {"https://example.com/y": ("a moved on", "a.txt")}
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "indexed", "b.txt": "deleted"}


def test_when_the_newer_copy_is_refused_the_older_valid_copy_is_indexed(settings, client, tmp_path, monkeypatch):
    write(tmp_path / "old.txt", "old but valid", "https://example.com/x", mtime=1_000)
    write(tmp_path / "new.txt", "new but refused", "https://example.com/x", mtime=2_000)
    fk.refused_by_mapping(monkeypatch, "new.txt")
    report = go(settings, client, tmp_path, max_batches=1)
    assert report.counts == {"indexed": 1, "dead_letter": 1}
    assert docs(client, settings) == {"https://example.com/x": ("old but valid", "old.txt")}
    assert ledger_states(client, settings, tmp_path) == {"old.txt": "indexed", "new.txt": "dead_letter"}


def test_the_vanish_guard_stops_mass_deletes(settings, client, tmp_path):
    for i in range(20):
        write(tmp_path / f"{i:02}.txt", f"t{i}", f"https://example.com/{i}")
    go(settings, client, tmp_path)
    for i in range(15):
        (tmp_path / f"{i:02}.txt").unlink()
    with pytest.raises(VanishedFolderError, match=r"15 of the 20 seed files .* may be unmounted"):
        go(settings, client, tmp_path)
    assert indices.count(client, settings.alias) == 20  # nothing deleted
    report = go(settings, client, tmp_path, allow_mass_delete=True)
    assert (report.n("deleted"), report.removed, report.unchanged) == (15, 15, 5)
    assert indices.count(client, settings.alias) == 5


def test_a_failed_rebuild_leaves_the_served_ledger_alone(settings, client, tmp_path, monkeypatch):
    write(tmp_path / "a.txt", "v1", "https://example.com/a")
    go(settings, client, tmp_path)
    served = sorted(client.indices.get(index=f"{settings.index_base}*").keys())
    write(tmp_path / "a.txt", "v2", "https://example.com/a")
    write(tmp_path / "bad.txt", "refused", "https://example.com/bad")
    fk.busy_for(monkeypatch, "bad.txt")
    with pytest.raises(ValidationFailed, match="removed the new index pair"):
        go(settings, client, tmp_path, full_rebuild=True)
    monkeypatch.undo()
    assert docs(client, settings) == {"https://example.com/a": ("v1", "a.txt")}  # the old index serves
    assert sorted(client.indices.get(index=f"{settings.index_base}*").keys()) == served  # the new pair is gone
    # the served ledger still describes the served index: the next run applies v2
    report = go(settings, client, tmp_path)
    assert report.counts == {"indexed": 2}
    assert docs(client, settings) == {
        "https://example.com/a": ("v2", "a.txt"),
        "https://example.com/bad": ("refused", "bad.txt"),
    }


def test_a_rebuild_is_not_held_back_by_a_dead_letter_and_its_replay_still_works(
    settings, client, tmp_path, monkeypatch
):
    write(tmp_path / "a.txt", "a", "https://example.com/a")
    write(tmp_path / "b.txt", "b", "https://example.com/b")
    go(settings, client, tmp_path)
    fk.refused_by_mapping(monkeypatch, "b.txt")
    report = go(settings, client, tmp_path, full_rebuild=True)
    assert report.counts == {"indexed": 1, "dead_letter": 1} and not report.ok
    assert docs(client, settings) == {"https://example.com/a": ("a", "a.txt")}  # promoted
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "indexed", "b.txt": "dead_letter"}
    monkeypatch.undo()
    client.indices.put_mapping(index=settings.alias, body={"properties": {"sentiment": {"type": "float"}}})
    replayed = go(settings, client, tmp_path, replay_dead_letters=True)
    assert replayed.counts == {"indexed": 1, "unchanged": 1}
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "indexed", "b.txt": "indexed"}


def test_the_dead_letters_of_a_rebuild_that_was_not_promoted_still_replay(settings, client, tmp_path, monkeypatch):
    write(tmp_path / "a.txt", "a", "https://example.com/a")
    write(tmp_path / "b.txt", "b", "https://example.com/b")
    fk.refused_by_mapping(monkeypatch, "b.txt")
    assert go(settings, client, tmp_path).counts == {"indexed": 1, "dead_letter": 1}
    fk.busy_for(monkeypatch, "a.txt")  # the rebuild dead-letters b.txt again, and is not promoted
    with pytest.raises(ValidationFailed, match="removed the new index pair"):
        go(settings, client, tmp_path, full_rebuild=True)
    monkeypatch.undo()
    (letter,) = client.search(index=settings.deadletter_index, body={"query": {"match_all": {}}})["hits"]["hits"]
    assert letter["_source"]["pending"] and not client.indices.exists(index=letter["_source"]["target"])
    client.indices.put_mapping(index=settings.alias, body={"properties": {"sentiment": {"type": "float"}}})
    replayed = go(settings, client, tmp_path, replay_dead_letters=True)  # into the served pair
    assert replayed.counts == {"indexed": 1, "unchanged": 1}
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "indexed", "b.txt": "indexed"}
    assert docs(client, settings) == {"https://example.com/a": ("a", "a.txt"), "https://example.com/b": ("b", "b.txt")}


# ----------------------------------------------------------------------------- files changing mid-run
def _planned(settings, client, folder):
    options = RunOptions(seed_dir=str(folder), check_images=False, max_batches=1, run_id="r1")
    target = prepare(client, settings, options)
    return options, target, plan(options, client, settings, target)


def test_a_file_swapped_for_a_link_after_planning_is_not_read(settings, client, tmp_path):
    folder = tmp_path / "seeds"
    write(folder / "a.txt", "A", "https://example.com/a")
    secret = tmp_path / "secret.txt"
    secret.write_text("---\ntitle: TOP-SECRET-VALUE\n---\n")
    options, target, p = _planned(settings, client, folder)
    (folder / "a.txt").unlink()
    os.symlink(secret, folder / "a.txt")
    report = process_batch(p.batches[0], client=client, settings=settings, options=options, target=target, emit=QUIET)
    (out,) = report.listed("changed")
    assert out["reason"] == "changed since it was planned: a symbolic link now stands in its path"
    assert "TOP-SECRET" not in repr(report.to_dict())
    assert indices.count(client, settings.alias) == 0
    # the next run sees what is there now: a link out of the folder, refused unread
    again = go(settings, client, folder)
    assert again.quarantined[0]["reason"] == "symbolic link points outside the seed folder"


def test_a_fifo_swapped_in_after_planning_cannot_hang_the_worker(settings, client, tmp_path):
    write(tmp_path / "a.txt", "A", "https://example.com/a")
    write(tmp_path / "b.txt", "B", "https://example.com/b")
    options, target, p = _planned(settings, client, tmp_path)
    (tmp_path / "a.txt").unlink()
    os.mkfifo(tmp_path / "a.txt")
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(
            r=process_batch(p.batches[0], client=client, settings=settings, options=options, target=target, emit=QUIET)
        )
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the worker hung on a FIFO"
    report = result["r"]
    assert report.counts == {"changed": 1, "indexed": 1}
    assert report.listed("changed")[0]["reason"] == "changed since it was planned: it is now a FIFO"


def test_content_edited_after_planning_is_left_for_the_next_run(settings, client, tmp_path):
    write(tmp_path / "a.txt", "planned", "https://example.com/a")
    options, target, p = _planned(settings, client, tmp_path)
    write(tmp_path / "a.txt", "edited meanwhile", "https://example.com/a")
    report = process_batch(p.batches[0], client=client, settings=settings, options=options, target=target, emit=QUIET)
    assert report.counts == {"changed": 1}
    assert go(settings, client, tmp_path).counts == {"indexed": 1}
    assert docs(client, settings) == {"https://example.com/a": ("edited meanwhile", "a.txt")}


# ----------------------------------------------------------------------------- our own bugs are not bad data
def test_a_bug_in_our_code_is_not_bad_data_and_stops_nothing_else(settings, client, tmp_path, monkeypatch):
    from pipeline.stages import normalize

    write(tmp_path / "a.txt", "a", "https://example.com/a", "topics: [boom]\n")
    write(tmp_path / "b.txt", "b", "https://example.com/b")
    real = normalize.canonical_topics
    monkeypatch.setattr(normalize, "canonical_topics", lambda topics: {}["boom"] if topics else real(topics))
    report = go(settings, client, tmp_path)
    # not a quarantine (the file is fine): its own state, the neighbour indexed, the run not ok
    assert report.counts == {"indexed": 1, "internal_error": 1} and not report.ok
    assert ledger_states(client, settings, tmp_path) == {"a.txt": "internal_error", "b.txt": "indexed"}
    assert Ledger(client, settings.ledger_index).count_state("quarantined") == 0
    monkeypatch.setattr(normalize, "canonical_topics", real)  # fixed: the next run takes the file again
    assert go(settings, client, tmp_path).counts == {"indexed": 1, "unchanged": 1}


def test_size_is_checked_before_anything_is_read(tmp_path, monkeypatch):
    from pipeline.sources import folder as discover

    with open(tmp_path / "huge.txt", "wb") as fh:
        fh.truncate(30 * 1024 * 1024)
    (seed,), _ = discover.discover(tmp_path)
    monkeypatch.setattr(discover, "_read_bounded", lambda *a: pytest.fail("read a file over the limit"))
    out = discover.hash_seed(seed, 1 << 20)
    assert (out.state, out.reason) == ("quarantined", "file is 30.0 MiB, over the 1.0 MiB limit for a seed")


def test_ledger_keys_use_the_raw_bytes_of_a_name():
    undecodable = os.fsdecode(b"caf\xe9.txt")
    assert entry_key("/r", undecodable) != entry_key("/r", "caf\\xe9.txt")
    assert entry_key("/r", "a.txt") == entry_key("/r", "a.txt")


def test_a_batch_travels_as_json_and_comes_back_equal(tmp_path):
    import json

    write(tmp_path / "x" / "a.txt")
    os.symlink(tmp_path / "x" / "a.txt", tmp_path / "link.txt")
    p = plan(RunOptions(seed_dir=str(tmp_path), dry_run=True, max_batches=1))
    (batch,) = p.batches
    again = type(batch).from_dict(json.loads(json.dumps(batch.to_dict())))
    assert again == batch
    assert [(s.rel, s.source) for s in again.seeds] == [("link.txt", "x/a.txt"), ("x/a.txt", "x/a.txt")]
    assert all(s.sha256 and s.seq for s in again.seeds)
    assert len({s.seq for s in again.seeds}) == 2  # new content: one ingest number each


def test_the_same_file_written_by_two_runs_is_indexed_not_a_duplicate_of_itself(settings, client, tmp_path):
    """Two overlapping runs number the same new content differently; the one that loses the version
    race still finds its own content in the index, so its file is `indexed` (seen once in CI as 20
    files ending `duplicate`)."""
    from pipeline.run.outcomes import index_documents
    from pipeline.run.report import RunReport
    from pipeline.run.seedpath import build_documents

    write(tmp_path / "a.txt", "A", "https://example.com/a")
    options, target, p = _planned(settings, client, tmp_path)
    (seed,) = p.batches[0].seeds
    (doc,), _ = build_documents([seed], options, RunReport())
    newer = replace(doc, version=doc.version + 10, seed=replace(seed, seq=seed.seq + 10))
    assert [o.state for o in index_documents(client, target, settings.deadletter_index, [newer])] == ["indexed"]
    assert [o.state for o in index_documents(client, target, settings.deadletter_index, [doc])] == ["indexed"]
    other = replace(doc, seed=replace(seed, rel="b.txt", source="b.txt"))  # another file, same article
    assert [o.state for o in index_documents(client, target, settings.deadletter_index, [other])] == ["duplicate"]
