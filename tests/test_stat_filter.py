"""The cheap change filter on a re-run, against a REAL OpenSearch node: a file whose stat fingerprint
(size, mtime, ctime, inode) matches the ledger is not read, unless the fingerprint is "racily clean"
(taken within the timestamp granularity of its hash, git's rule), when an edit could hide behind it."""

from __future__ import annotations

import os
import shutil

from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.sources import folder as folder_source
from pipeline.sources.folder import FolderSource
from pipeline.stores.ledger import Ledger, LedgerEntry
from pipeline.types import SeedFile, entry_key

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/{name}"\n---\n'
SECOND = 1_000_000_000


def _write(folder, name, title, url_name=None):
    path = folder / name
    path.write_text(SEED.format(title=title, name=url_name or name), encoding="utf-8")
    return path


def _run(settings, client, folder):
    return run(settings, RunOptions(seed_dir=str(folder), check_images=False), client=client, emit=lambda _: None)


def _entry(settings, client, folder, name) -> LedgerEntry:
    ledger = Ledger(client, settings.ledger_index)
    ledger.refresh()
    return ledger.lookup([entry_key(str(folder), name)])[entry_key(str(folder), name)]


def _title(settings, client, name) -> str:
    client.indices.refresh(index=settings.alias)
    hits = client.search(index=settings.alias, body={"query": {"term": {"url": f"https://example.com/{name}"}}})
    return hits["hits"]["hits"][0]["_source"]["title"]


def _count_hashes(monkeypatch) -> list[str]:
    hashed: list[str] = []
    real = folder_source.hash_seed
    monkeypatch.setattr(
        folder_source, "hash_seed", lambda seed, max_bytes: hashed.append(seed.rel) or real(seed, max_bytes)
    )
    return hashed


def _forge_stat(settings, client, folder, name, hashed_ns: int) -> None:
    """Make the ledger's fingerprint equal the file's current stat, as if the edit had landed in the same
    timestamp tick as the hash (size kept, mtime and ctime unchanged to the file system's resolution)."""
    st = os.stat(folder / name)
    Ledger(client, settings.ledger_index).update(
        {
            entry_key(str(folder), name): {
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "ctime_ns": st.st_ctime_ns,
                "ino": st.st_ino,
                "hashed_ns": hashed_ns,
            }
        }
    )


def test_edit_hidden_behind_an_unchanged_fingerprint_is_caught_when_racy(settings, client, tmp_path, monkeypatch):
    _write(tmp_path, "a.txt", "Alpha")
    assert _run(settings, client, tmp_path).indexed == 1
    before = _entry(settings, client, tmp_path, "a.txt")
    mtime = os.stat(tmp_path / "a.txt").st_mtime_ns
    _write(tmp_path, "a.txt", "Bravo")  # same size
    os.utime(tmp_path / "a.txt", ns=(mtime, mtime))  # mtime restored, as cp -p or a same-tick edit leaves it
    _forge_stat(settings, client, tmp_path, "a.txt", before.hashed_ns)  # hashed in the same tick as that mtime

    hashed = _count_hashes(monkeypatch)
    report = _run(settings, client, tmp_path)
    assert hashed == ["a.txt"] and (report.indexed, report.unchanged) == (1, 0)
    assert _title(settings, client, "a.txt") == "Bravo"


def test_a_fingerprint_older_than_its_hash_is_trusted_without_reading(settings, client, tmp_path, monkeypatch):
    # the control of the test above: the same forged fingerprint, hashed well after it, is believed (as git
    # and rsync believe it); this is what keeps a no-change re-run from reading every file
    _write(tmp_path, "a.txt", "Alpha")
    assert _run(settings, client, tmp_path).indexed == 1
    st = os.stat(tmp_path / "a.txt")
    _forge_stat(settings, client, tmp_path, "a.txt", max(st.st_mtime_ns, st.st_ctime_ns) + 10 * SECOND)

    hashed = _count_hashes(monkeypatch)
    report = _run(settings, client, tmp_path)
    assert hashed == [] and report.counts == {"unchanged": 1}


def test_racy_entry_is_hashed_again_then_trusted(settings, client, tmp_path, monkeypatch):
    _write(tmp_path, "a.txt", "Alpha")
    assert _run(settings, client, tmp_path).indexed == 1
    first = _entry(settings, client, tmp_path, "a.txt")

    hashed = _count_hashes(monkeypatch)
    report = _run(settings, client, tmp_path)  # the file was written seconds ago: its fingerprint is racy
    assert hashed == ["a.txt"] and report.counts == {"unchanged": 1}
    second = _entry(settings, client, tmp_path, "a.txt")
    assert second.hashed_ns > first.hashed_ns and second.state == "indexed" and second.sha256 == first.sha256

    monkeypatch.setattr(FolderSource, "racy_window_ns", 0)  # a file system with exact timestamps: no longer racy
    hashed.clear()
    assert _run(settings, client, tmp_path).counts == {"unchanged": 1}
    assert hashed == []


def test_touched_but_identical_file_is_not_reindexed(settings, client, tmp_path, monkeypatch):
    _write(tmp_path, "a.txt", "Alpha")
    assert _run(settings, client, tmp_path).indexed == 1
    st = os.stat(tmp_path / "a.txt")
    os.utime(tmp_path / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 5 * SECOND))  # touch

    hashed = _count_hashes(monkeypatch)
    report = _run(settings, client, tmp_path)
    assert hashed == ["a.txt"] and report.counts == {"unchanged": 1}  # read once, not parsed or indexed
    entry = _entry(settings, client, tmp_path, "a.txt")
    assert entry.mtime_ns == st.st_mtime_ns + 5 * SECOND  # the new fingerprint is recorded


def test_file_replaced_by_another_inode_is_compared_by_content(settings, client, tmp_path, monkeypatch):
    _write(tmp_path, "a.txt", "Alpha")
    _write(tmp_path, "b.txt", "Bravo")
    assert _run(settings, client, tmp_path).indexed == 2
    old_a = os.stat(tmp_path / "a.txt")
    # a.txt: an identical copy moved over it (new inode, same bytes and mtime); b.txt: same size, mtime
    # restored, other bytes, new inode (an editor that writes a new file and renames it)
    shutil.copy2(tmp_path / "a.txt", tmp_path / "a.new")  # a.txt's inode is still in use: a.new gets another
    os.replace(tmp_path / "a.new", tmp_path / "a.txt")
    mtime_b = os.stat(tmp_path / "b.txt").st_mtime_ns
    _write(tmp_path, "b.new", "Bravx", url_name="b.txt")
    os.utime(tmp_path / "b.new", ns=(mtime_b, mtime_b))
    os.replace(tmp_path / "b.new", tmp_path / "b.txt")

    report = _run(settings, client, tmp_path)
    assert (report.unchanged, report.indexed) == (1, 1)
    assert _title(settings, client, "b.txt") == "Bravx"
    assert _entry(settings, client, tmp_path, "a.txt").ino == os.stat(tmp_path / "a.txt").st_ino != old_a.st_ino


# ----------------------------------------------------------------------------- the rule itself
def _seed(**kw) -> SeedFile:
    return SeedFile(
        "/r", "a.txt", "/r", "a.txt", **{"size": 10, "mtime_ns": 100 * SECOND, "ctime_ns": 100 * SECOND, "ino": 7, **kw}
    )


def test_racy_rule():
    seed = _seed()
    entry = LedgerEntry(
        "/r", "a.txt", "indexed", size=10, mtime_ns=100 * SECOND, ctime_ns=100 * SECOND, ino=7, hashed_ns=110 * SECOND
    )
    window = folder_source.RACY_WINDOW_NS
    assert entry.trusts_stat(seed, window)
    assert not entry.trusts_stat(_seed(size=11), window)
    assert not entry.trusts_stat(_seed(ino=8), window)
    late_ctime = LedgerEntry(**{**entry.__dict__, "ctime_ns": 108 * SECOND})  # chmod or a restored mtime after an edit
    assert not late_ctime.trusts_stat(_seed(ctime_ns=108 * SECOND), window)
    assert not LedgerEntry(**{**entry.__dict__, "hashed_ns": 0}).trusts_stat(seed, window)  # hashed before the rule
    assert LedgerEntry(**{**entry.__dict__, "hashed_ns": 0}).trusts_stat(seed, None)  # an ETag follows the content


def test_planned_rows_keep_the_hash_time_and_read_old_rows():
    seed = _seed(sha256="ab", seq=3, hashed_ns=5)
    assert SeedFile.from_row(seed.to_row(), "/r", "/r") == seed
    assert SeedFile.from_row(seed.to_row()[:8], "/r", "/r").hashed_ns == 0  # a batch planned before the field
