"""Moves are not vanishes, and an unreadable folder keeps its articles, against a REAL node (issue 18).

A file is gone only when its content is gone: archiving most of a folder into sub-folders keeps every
article (same document version, never a gap in the index) and does not trip the vanish guard; a folder
the run cannot list hides its files, it does not delete them."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pickle
import pwd
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import VanishedFolderError
from pipeline.run import flow
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.sources import folder as discover
from pipeline.sources.folder import FolderSource
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger, LedgerEntry
from pipeline.types import SeedFile

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/{url}"\n---\n'


def write(path: Path, title: str, url: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SEED.format(title=title, url=url), encoding="utf-8")
    return path


def go(settings, client, folder, s3_client=None, **kw):
    kw.setdefault("check_images", False)
    options = RunOptions(seed_dir=str(folder), **kw)
    return run(settings, options, client=client, emit=lambda _: None, s3_client=s3_client)


def served(client, settings) -> dict[str, tuple[int, str]]:
    """doc id -> (_version, seed.path) of every document the alias serves."""
    client.indices.refresh(index=settings.alias)
    hits = client.search(index=settings.alias, body={"size": 1000, "version": True})["hits"]["hits"]
    return {h["_id"]: (h["_version"], h["_source"]["seed"]["path"]) for h in hits}


def entries(client, settings, folder) -> dict[str, LedgerEntry]:
    return {e.path: e for e in Ledger(client, settings.ledger_index).entries_for_root(str(folder)).values()}


def move(folder: Path, old: str, new: str) -> None:
    (folder / new).parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder / old, folder / new)


def count_before_each_batch(monkeypatch, client, settings) -> list[int]:
    """The number of articles served when each batch starts (after planning settled the deletions)."""
    seen: list[int] = []
    real = flow.process_batch

    def counting(batch, **kw):
        client.indices.refresh(index=settings.alias)
        seen.append(indices.count(client, settings.alias))
        return real(batch, **kw)

    monkeypatch.setattr(flow, "process_batch", counting)
    return seen


# ----------------------------------------------------------------------------- moves
def test_archiving_most_of_the_folder_by_year_keeps_every_article(settings, client, tmp_path, monkeypatch):
    for i in range(20):
        write(tmp_path / f"{i:02}.txt", f"t{i}", str(i))
    go(settings, client, tmp_path)
    before = served(client, settings)
    old = entries(client, settings, tmp_path)
    assert len(before) == 20

    moves = {f"{i:02}.txt": f"{2024 + i % 2}/{i:02}.txt" for i in range(16)}  # 80 % of the folder
    for a, b in moves.items():
        move(tmp_path, a, b)
    counts = count_before_each_batch(monkeypatch, client, settings)
    report = go(settings, client, tmp_path, max_batches=2)  # no VanishedFolderError

    assert counts == [20, 20]  # the old paths were settled, no article left in between
    assert (report.n("deleted"), report.removed, report.unchanged, report.indexed) == (16, 0, 4, 16)
    assert any("16 files moved" in n for n in report.notes)
    after = served(client, settings)
    assert {i: v for i, (v, _) in after.items()} == {i: v for i, (v, _) in before.items()}  # same versions
    assert {p for _, p in after.values()} == {moves.get(p, p) for _, p in before.values()}  # seed.path follows
    now = entries(client, settings, tmp_path)
    for a, b in moves.items():
        assert (now[a].state, now[a].reason) == ("deleted", f"moved: its content is now at {b}")
        assert (now[b].state, now[b].doc_id, now[b].seq) == ("indexed", old[a].doc_id, old[a].seq)

    again = go(settings, client, tmp_path)
    assert (again.counts, again.removed) == ({"unchanged": 20}, 0)
    assert served(client, settings) == after


def test_moves_copies_and_deletions_in_one_run(settings, client, tmp_path):
    for i in range(16):
        write(tmp_path / f"{i:02}.txt", f"t{i}", str(i))
    for name in ("copy1.txt", "copy2.txt"):  # the same bytes twice: one article, one duplicate
        write(tmp_path / name, "twice", "twice")
    go(settings, client, tmp_path)
    before = served(client, settings)
    assert len(before) == 17

    for i in range(12):
        move(tmp_path, f"{i:02}.txt", f"old/{i:02}.txt")
    for i in (12, 13, 14):
        (tmp_path / f"{i:02}.txt").unlink()
    move(tmp_path, "copy1.txt", "copies/copy1.txt")
    move(tmp_path, "copy2.txt", "copies/copy2.txt")
    report = go(settings, client, tmp_path)

    assert (report.n("deleted"), report.removed) == (17, 3)  # 14 moved, 3 deleted
    after = served(client, settings)
    assert set(after) == set(before) - {i for i, (_, p) in before.items() if p in ("12.txt", "13.txt", "14.txt")}
    assert all(after[i][0] == before[i][0] for i in after)
    states = {p: e.state for p, e in entries(client, settings, tmp_path).items() if p.startswith("copies/")}
    assert sorted(states.values()) == ["duplicate", "indexed"]
    assert go(settings, client, tmp_path).counts == {"unchanged": 15}


def test_moved_and_edited_files_are_new_content_and_count_for_the_guard(settings, client, tmp_path):
    for i in range(20):
        write(tmp_path / f"{i:02}.txt", f"t{i}", str(i))
    go(settings, client, tmp_path)
    for i in range(15):
        (tmp_path / f"{i:02}.txt").unlink()
        write(tmp_path / "2025" / f"{i:02}.txt", f"t{i} (edited)", str(i))
    with pytest.raises(VanishedFolderError, match=r"^15 of the 20 seed files .* may be unmounted"):
        go(settings, client, tmp_path)
    assert indices.count(client, settings.alias) == 20


def test_a_mass_deletion_beside_a_few_moves_still_trips_the_guard(settings, client, tmp_path):
    for i in range(20):
        write(tmp_path / f"{i:02}.txt", f"t{i}", str(i))
    go(settings, client, tmp_path)
    before = served(client, settings)
    for i in range(15):
        (tmp_path / f"{i:02}.txt").unlink()
    for i in range(15, 18):
        move(tmp_path, f"{i:02}.txt", f"kept/{i:02}.txt")
    with pytest.raises(VanishedFolderError, match=r"^15 of the 20 .*; 3 more moved within it\): the folder may be"):
        go(settings, client, tmp_path)
    assert served(client, settings) == before  # nothing deleted, nothing re-sent


class FakeS3:
    """Just the S3 calls ``S3Source`` makes (list, ranged GET), over a dict of objects (a unit stand-in
    for the live server of tests/test_s3_live.py): the move logic is the same for objects as for files."""

    WHEN = datetime(2026, 1, 2, tzinfo=UTC)

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def _etag(self, key: str) -> str:
        return '"' + hashlib.md5(self.objects[key]).hexdigest() + '"'

    def list_objects_v2(self, **_: object) -> dict:
        return {}

    def get_paginator(self, _: str) -> FakeS3:
        return self

    def paginate(self, Bucket: str, Prefix: str, PaginationConfig: dict) -> list[dict]:
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        return [
            {
                "Contents": [
                    {"Key": k, "Size": len(self.objects[k]), "LastModified": self.WHEN, "ETag": self._etag(k)}
                    for k in keys
                ]
            }
        ]

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict:
        data = self.objects[Key]
        return {
            "Body": io.BytesIO(data),
            "ETag": self._etag(Key),
            "ContentRange": f"bytes 0-{len(data) - 1}/{len(data)}",
            "LastModified": self.WHEN,
        }


def test_objects_moved_to_another_prefix_keep_their_articles(settings, client):
    s3 = FakeS3()
    for i in range(20):
        s3.objects[f"drop/{i:02}.txt"] = SEED.format(title=f"t{i}", url=i).encode()
    location = "s3://seeds-bucket/drop"
    go(settings, client, location, s3_client=s3)
    before = served(client, settings)
    assert len(before) == 20

    for i in range(15):  # S3 has no rename: a copy, then a delete
        s3.objects[f"drop/2025/{i:02}.txt"] = s3.objects.pop(f"drop/{i:02}.txt")
    report = go(settings, client, location, s3_client=s3)
    assert (report.n("deleted"), report.removed, report.indexed) == (15, 0, 15)
    after = served(client, settings)
    assert {i: v for i, (v, _) in after.items()} == {i: v for i, (v, _) in before.items()}
    assert sum(p.startswith("2025/") for _, p in after.values()) == 15
    assert go(settings, client, location, s3_client=s3).counts == {"unchanged": 20}


# ----------------------------------------------------------------------------- unreadable folders
def _locked(monkeypatch, folder: Path) -> None:
    """The walk cannot list ``folder`` (EACCES), as a ``chmod 000`` folder is to a non-root user."""
    real = os.scandir
    blocked = os.path.realpath(folder)

    def scandir(path="."):
        if os.path.realpath(path) == blocked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)


@pytest.mark.parametrize("which", ["locked", ""], ids=["sub-folder", "the seed folder itself"])
def test_an_unreadable_folder_keeps_its_articles(settings, client, tmp_path, monkeypatch, which):
    for i in range(5):
        write(tmp_path / f"{i:02}.txt", f"t{i}", str(i))
    for i in range(5, 20):
        write(tmp_path / "locked" / f"{i:02}.txt", f"t{i}", str(i))
    go(settings, client, tmp_path)
    before = served(client, settings)

    _locked(monkeypatch, tmp_path / which)
    for _ in (1, 2):  # the second run finds the same refusal: still kept, still said
        report = go(settings, client, tmp_path)
        assert (report.n("deleted"), report.removed, report.unreadable_folders) == (0, 0, 1)
        text = report.render()
        assert "1 folders could not be read: the articles of the files in them were kept" in text
        assert f"cannot read folder {which or '.'!r}: the {15 if which else 20} files the ledger knows" in text
        assert [(q["path"], q["reason"]) for q in report.quarantined] == [
            (which, "cannot read folder: Permission denied")
        ]
        assert report.unchanged == (5 if which else 0)
        assert served(client, settings) == before
    assert {p: e.state for p, e in entries(client, settings, tmp_path).items() if p.startswith("locked/")} == {
        f"locked/{i:02}.txt": "indexed" for i in range(5, 20)
    }

    monkeypatch.undo()  # readable again: every file is where it was
    report = go(settings, client, tmp_path)
    assert (report.unchanged, report.removed, report.unreadable_folders) == (20, 0, 0)
    assert served(client, settings) == before


def walk_unprivileged(folder: Path) -> list:
    """``discover.walk(folder)`` on the real file system as a user ``chmod`` applies to: this process when
    it is not root; else a forked child that drops to ``nobody`` first (root lists any folder; the
    interpreter lives under /root, so the child runs the code already loaded instead of starting one)."""
    if os.geteuid() != 0:
        return list(discover.walk(folder))
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        data = pickle.dumps(("error", "the unprivileged walk failed"))
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            data = pickle.dumps(("ok", list(discover.walk(folder))))
        except OSError as exc:
            data = pickle.dumps(("error", repr(exc)))
        finally:
            with os.fdopen(w, "wb") as out:
                out.write(data)
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as got:
        data = got.read()
    os.waitpid(pid, 0)
    status, items = pickle.loads(data)
    assert status == "ok", items
    return items


def test_a_chmod_000_folder_on_the_real_file_system(settings, client, monkeypatch):
    """The same with a real ``chmod 000`` folder, listed by a user it applies to."""
    folder = Path(tempfile.mkdtemp(prefix="seednews-moves-"))
    try:
        folder.chmod(0o755)  # nobody must reach it
        for i in range(5):
            write(folder / f"{i:02}.txt", f"t{i}", str(i))
        for i in range(5, 20):
            write(folder / "locked" / f"{i:02}.txt", f"t{i}", str(i))
        assert len(walk_unprivileged(folder)) == 20  # the unprivileged walk sees everything while it may
        go(settings, client, folder)
        before = served(client, settings)

        (folder / "locked").chmod(0)
        listed = walk_unprivileged(folder)
        refused = [(o.seed.rel, o.reason) for o in listed if not isinstance(o, SeedFile)]
        assert (len(listed), refused) == (6, [("locked", "cannot read folder: Permission denied")])
        monkeypatch.setattr(FolderSource, "walk", lambda self: iter(listed))
        report = go(settings, client, folder)
        assert (report.n("deleted"), report.removed, report.unreadable_folders) == (0, 0, 1)
        assert "cannot read folder 'locked': the 15 files the ledger knows in it keep their articles" in report.render()
        assert served(client, settings) == before
    finally:
        (folder / "locked").chmod(0o755)
        shutil.rmtree(folder)
