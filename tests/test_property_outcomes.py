"""Property: whatever a seed folder holds (arbitrary YAML with tags and odd scalars, odd names, links,
duplicated articles) and however it is edited between runs, against a REAL node:

- the run finishes;
- every seed-named file has exactly one outcome in the report and one entry in the ledger;
- the index holds exactly what the ledger says: each ``indexed`` entry's article is in the index with
  that file's content, no article is indexed twice, and nothing is in the index that no file carries;
- a run with nothing changed changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.config import Settings
from pipeline.policy import CARRYING
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.sources.folder import walk
from pipeline.stores.client import make_client
from pipeline.stores.ledger import Ledger
from pipeline.types import SeedOutcome, display_path

NAMES = [
    "a.txt",
    "b.txt",
    "sub/a.txt",
    "sub/deep/b.txt",
    "x y.md",
    "ünï.txt",
    b"caf\xe9.txt",
    "-dash.txt",
    "a.txt.swp",
    ".hidden.txt",
    "sub/c.md",
]
URLS = ["https://example.com/1", "https://example.com/2", "http://EXAMPLE.com/1?utm_source=x", "https://e.org/3"]
EXTRAS = [
    "quality: !!int abc",
    "quality: 5",
    "topics: [AI, ~]",
    "heat: 99999999999999999999999",
    "published: maybe",
    "excerpt: !!binary aGk=",
    "related: [{title: r}, {excerpt: no title}]",
    "images: [{url: 'https://i.example/x.png'}, 7]",
    "quality: 99999999999",
    "x: &a 1\ny: *a",
    "provider: {name: P, domain: p.com}",
    "topics: !!set {a}",
    "category: !!timestamp 2021-02-30",
    "when: 12:30:00",
    "1: numeric key",
    "title2: [[[[]]]]",
]


@st.composite
def seed_text(draw) -> bytes:
    kind = draw(st.sampled_from(["seed", "seed", "seed", "yaml", "bytes", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "yaml":
        body = draw(st.text(max_size=200))
        return f"---\n{body}\n---\n".encode("utf-8", "surrogatepass")
    title = draw(st.text(min_size=0, max_size=30))
    date = draw(st.sampled_from(["2021-10-06T11:10:00Z", "2021-10-06", "0001-01-01T00:00:00+01:00", "last tuesday"]))
    lines = [
        f"title: {json.dumps(title)}",
        f"publishedDateTime: {json.dumps(date)}",
        f"webUrl: {json.dumps(draw(st.sampled_from(URLS)))}",
    ]
    lines += draw(st.lists(st.sampled_from(EXTRAS), max_size=3, unique=True))
    return ("---\n" + "\n".join(lines) + "\n---\n").encode("utf-8", "surrogatepass")


@st.composite
def folder(draw):
    files = {}
    for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True)):
        kind = draw(st.sampled_from(["file", "file", "file", "link_in", "link_out", "loop"]))
        files[name] = (kind, draw(seed_text()))
    edits = {name: draw(st.sampled_from(["keep", "edit", "delete", "old_mtime"])) for name in files}
    new_text = {name: draw(seed_text()) for name in files}
    return files, edits, new_text


def _path(root: bytes, name) -> bytes:
    return os.path.join(root, name if isinstance(name, bytes) else name.encode())


def _materialize(root: bytes, outside: bytes, files) -> None:
    for name, (kind, text) in files.items():
        p = _path(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if kind == "file":
            with open(p, "wb") as fh:
                fh.write(text)
        elif kind == "link_in":
            target = _path(root, b"sub/target.dat")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(text)
            os.symlink(target, p)
        elif kind == "link_out":
            os.symlink(outside, p)
        else:
            os.symlink(os.path.basename(p), p)


def _check(client, s: Settings, root: str, report) -> dict[str, tuple[str, str]]:
    """The invariants; returns what the index serves (id -> (seed path, sha256))."""
    found = list(walk(root))
    paths = {display_path(i.seed.rel if isinstance(i, SeedOutcome) else i.rel) for i in found}
    assert report.files_seen == len(found)
    assert sum(report.counts.values()) == len(found) + report.n("deleted")
    entries = list(Ledger(client, s.ledger_index).entries_for_root(root).values())
    live = [e for e in entries if e.state != "deleted"]
    assert sorted(e.path for e in live) == sorted(paths)  # one entry per file, no more
    for state, items in report.samples.items():
        states = {e.path: e.state for e in entries}
        for item in items:
            assert states[item["path"]] == state, (item, states)
    client.indices.refresh(index=s.alias)
    hits = client.search(index=s.alias, body={"size": 1000})["hits"]["hits"]
    served = {h["_id"]: (h["_source"]["seed"]["path"], h["_source"]["seed"]["sha256"]) for h in hits}
    indexed = [e for e in live if e.state == "indexed"]
    assert len({e.doc_id for e in indexed}) == len(indexed), "an article indexed by two files"
    for e in indexed:
        assert served.get(e.doc_id) == (e.path, e.sha256), (e, served.get(e.doc_id))
    carried = {e.doc_id for e in live if e.state in CARRYING and e.doc_id}
    assert set(served) <= carried, f"in the index but carried by no file: {set(served) - carried}"
    return served


@hsettings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=folder())
def test_every_file_one_outcome_and_the_index_is_what_the_ledger_says(opensearch_url, case):
    files, edits, new_text = case
    s = Settings(opensearch_url=opensearch_url, index_base=f"prop-{uuid.uuid4().hex[:10]}")
    client = make_client(s)
    tmp = tempfile.mkdtemp(prefix="seednews-prop-")
    root_s = os.path.join(tmp, "seeds")
    root, outside = os.fsencode(root_s), os.fsencode(os.path.join(tmp, "outside.txt"))
    os.makedirs(root)
    with open(outside, "wb") as fh:
        fh.write(b"---\ntitle: secret\npublishedDateTime: 2021-10-06\nwebUrl: https://secret.example/\n---\n")
    quiet = lambda _: None  # noqa: E731
    options = RunOptions(seed_dir=root_s, check_images=False, max_batches=2)
    try:
        _materialize(root, outside, files)
        _check(client, s, root_s, run(s, options, client=client, emit=quiet))

        for name, what in edits.items():
            p = _path(root, name)
            if what == "delete":
                os.unlink(p)
            elif what in ("edit", "old_mtime") and files[name][0] == "file":
                with open(p, "wb") as fh:
                    fh.write(new_text[name])
                if what == "old_mtime":
                    os.utime(p, (1_000, 1_000))
        second = run(s, options, client=client, emit=quiet)
        served = _check(client, s, root_s, second)

        third = run(s, options, client=client, emit=quiet)
        assert third.counts == ({"unchanged": third.files_seen} if third.files_seen else {})
        assert third.removed == 0
        assert _check(client, s, root_s, third) == served
    finally:
        client.indices.delete(index=f"{s.index_base}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=s.index_base, ignore=[404])
        client.indices.delete_index_template(name=s.ledger_index, ignore=[404])
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)
