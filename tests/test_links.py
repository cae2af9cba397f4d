"""Related articles are links (issue 22), against a REAL OpenSearch node (see conftest): a related entry naming
an indexed article is ``linked``, the cited article lists its citers (``cited_by``, ``cited_by_count``), and
both stay right when a cited article arrives later, leaves or changes URL, and across a full rebuild, with
the documents' external versions untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.run import linking
from pipeline.run.flow import run
from pipeline.run.linking import citations, links_of, updates
from pipeline.run.options import RunOptions
from pipeline.stages.normalize import document_id
from pipeline.stores import citations as cit
from pipeline.stores.citations import Links, Node
from pipeline.stores.ledger import Ledger

TECHCRUNCH = "000_9af88004a1e871b6.txt"
COMMON_DREAMS = "002_2c91f7d39cae87f0.txt"
TC_ID = document_id("https://techcrunch.com/2021/10/06/european-parliament-backs-ban-on-remote-biometric-surveillance/")
CD_URL = "https://www.commondreams.org/news/2021/10/06/historic-moment-eu-approves-call-sweeping-ban-facial-recognition-surveillance"
CD_ID = document_id(CD_URL)
TECHSPOT_ID = document_id(
    "https://www.techspot.com/news/91618-european-parliament-opposes-mass-surveillance-calls-ban-facial.html"
)

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/{url}"\n'


def write(folder: Path, name: str, url: str, related: tuple[str, ...] = ()) -> None:
    text = SEED.format(title=url.upper(), url=url)
    if related:
        text += "related:\n" + "".join(f'  - title: "{r}"\n    webUrl: "https://example.com/{r}"\n' for r in related)
    (folder / name).write_text(text + "---\n", encoding="utf-8")


@pytest.fixture(autouse=True, params=["as-shipped", "terms-only", "scan-only"])
def strategy(request, monkeypatch):
    """Every test runs with linking's two reads: as shipped (one scan when the run changed at least half the
    index, which these small folders often do), never a scan (the terms queries around what changed), and
    always a scan. The links must come out the same."""
    share = {"as-shipped": linking.SCAN_SHARE, "terms-only": float("inf"), "scan-only": 0.0}[request.param]
    monkeypatch.setattr(linking, "SCAN_SHARE", share)
    return request.param


def go(settings, client, folder, **kw):
    kw.setdefault("check_images", False)
    return run(settings, RunOptions(seed_dir=str(folder), **kw), client=client, emit=lambda _: None)


def docs(client, settings) -> dict[str, dict]:
    client.indices.refresh(index=settings.alias)
    hits = client.search(index=settings.alias, body={"size": 1000, "version": True})["hits"]["hits"]
    return {h["_id"]: {**h["_source"], "_version": h["_version"]} for h in hits}


def linked(doc: dict) -> dict[str, bool]:
    return {r["id"]: r["linked"] for r in doc["related"]}


def cited(doc: dict) -> tuple[list[str], int]:
    return doc["cited_by"], doc["cited_by_count"]


def ex(name: str) -> str:
    return document_id(f"https://example.com/{name}")


def versions_are_the_ledger_seqs(client, settings, folder) -> None:
    """Linking rewrote documents with their own external version: each is still its file's ``seq``."""
    entries = Ledger(client, settings.ledger_index).entries_for_root(str(folder)).values()
    seqs = {e.doc_id: e.seq for e in entries if e.state == "indexed"}
    assert {i: d["_version"] for i, d in docs(client, settings).items()} == seqs


# ----------------------------------------------------------------------------- pure
def node(i: str, *related: str | None, linked: tuple[bool | None, ...] | None = None, cited_by=()) -> Node:
    flags = linked if linked is not None else tuple(False for _ in related)
    return Node(i, tuple(related), Links(flags, tuple(cited_by)))


def test_citations_count_each_citer_once_and_never_a_self_citation():
    nodes = [node("a", "b", "b", "a"), node("c", "b", None), node("d", "x")]
    assert citations(nodes, {"a", "b"}) == {"b": ("a", "c")}


def test_links_of_and_updates_name_only_what_changes():
    present = {"a", "b"}
    a = node("a", "b", "gone", None)
    assert links_of(a, {"a": ("b",)}, present) == Links((True, False, False), ("b",))
    b = node("b", "a", linked=(True,), cited_by=("a",))  # already right: not rewritten
    old = node("c", "a", linked=(None,))  # written before linking existed
    assert updates({"a": a, "b": b, "c": old}, {"a": ("b",), "b": ("a",)}, present | {"c"}) == {
        "a": Links((True, False, False), ("b",)),
        "c": Links((True,), ()),
    }


def test_apply_links_sets_the_fields_on_a_copy():
    source = {"id": "a", "related": [{"id": "b", "linked": False}, {"title": "no url", "linked": False}]}
    out = cit.apply_links(source, Links((True, False), ("c", "d")))
    assert out["related"] == [{"id": "b", "linked": True}, {"title": "no url", "linked": False}]
    assert (out["cited_by"], out["cited_by_count"]) == (["c", "d"], 2)
    assert source["related"][0]["linked"] is False


# ----------------------------------------------------------------------------- the samples
def test_the_sample_related_entry_links_to_the_cited_sample(settings, client, seed_dir):
    report = go(settings, client, seed_dir)
    assert "links: 2 articles updated (2 checked around the 2 articles indexed or removed)" in report.notes, (
        report.notes
    )
    d = docs(client, settings)
    tc, cd = d[TC_ID], d[CD_ID]
    assert linked(tc) == {TECHSPOT_ID: False, CD_ID: True}
    (entry,) = [r for r in tc["related"] if r["linked"]]
    assert entry["url"] == CD_URL == cd["url"]
    assert cited(cd) == ([TC_ID], 1)
    assert cited(tc) == ([], 0)
    assert linked(cd) == {TECHSPOT_ID: False}
    versions_are_the_ledger_seqs(client, settings, seed_dir)
    # the same files sent again (same versions): accepted, rebuilt from the file, and linked again
    again = go(settings, client, seed_dir, skip_unchanged=False)
    assert again.indexed == 2
    d = docs(client, settings)
    assert linked(d[TC_ID])[CD_ID] is True and cited(d[CD_ID]) == ([TC_ID], 1)
    versions_are_the_ledger_seqs(client, settings, seed_dir)


def test_a_cited_article_arriving_later_is_linked_without_resending_its_citer(settings, client, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write(folder, "a.txt", "a", related=("b", "c"))
    go(settings, client, folder)
    assert linked(docs(client, settings)[ex("a")]) == {ex("b"): False, ex("c"): False}
    write(folder, "b.txt", "b")
    report = go(settings, client, folder)
    assert (report.indexed, report.unchanged) == (1, 1)  # a.txt is not read again
    d = docs(client, settings)
    assert linked(d[ex("a")]) == {ex("b"): True, ex("c"): False}
    assert cited(d[ex("b")]) == ([ex("a")], 1)
    assert any(n.startswith("links: 2 articles updated") for n in report.notes), report.notes
    versions_are_the_ledger_seqs(client, settings, folder)


def test_deleting_a_cited_article_or_its_citer_unlinks(settings, client, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write(folder, "a.txt", "a", related=("c",))
    write(folder, "b.txt", "b", related=("c",))
    write(folder, "c.txt", "c", related=("a",))
    go(settings, client, folder)
    d = docs(client, settings)
    assert cited(d[ex("c")]) == (sorted([ex("a"), ex("b")]), 2)
    assert cited(d[ex("a")]) == ([ex("c")], 1)
    (folder / "b.txt").unlink()  # a citer leaves: its citation goes with it
    go(settings, client, folder, allow_mass_delete=True)
    assert cited(docs(client, settings)[ex("c")]) == ([ex("a")], 1)
    (folder / "c.txt").unlink()  # the cited article leaves: its citer's entry is no link any more
    go(settings, client, folder, allow_mass_delete=True)
    d = docs(client, settings)
    assert set(d) == {ex("a")}
    assert linked(d[ex("a")]) == {ex("c"): False}
    assert cited(d[ex("a")]) == ([], 0)  # c cited it, and c is gone
    versions_are_the_ledger_seqs(client, settings, folder)


def test_a_cited_article_changing_url_moves_the_link(settings, client, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write(folder, "a.txt", "a", related=("b",))
    write(folder, "b.txt", "b", related=("a",))
    write(folder, "c.txt", "c", related=("b2",))
    go(settings, client, folder)
    d = docs(client, settings)
    assert linked(d[ex("a")]) == {ex("b"): True} and linked(d[ex("c")]) == {ex("b2"): False}
    assert cited(d[ex("a")]) == ([ex("b")], 1)
    write(folder, "b.txt", "b2")  # the article moves to another URL, and stops citing a
    go(settings, client, folder)
    d = docs(client, settings)
    assert set(d) == {ex("a"), ex("b2"), ex("c")}
    assert linked(d[ex("a")]) == {ex("b"): False}
    assert linked(d[ex("c")]) == {ex("b2"): True}
    assert cited(d[ex("b2")]) == ([ex("c")], 1)
    assert cited(d[ex("a")]) == ([], 0)  # the stale citation from the old b is gone
    versions_are_the_ledger_seqs(client, settings, folder)


def test_a_citer_editing_its_related_list_moves_its_citation(settings, client, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write(folder, "a.txt", "a", related=("b",))
    write(folder, "b.txt", "b")
    write(folder, "c.txt", "c")
    go(settings, client, folder)
    write(folder, "a.txt", "a", related=("c",))
    go(settings, client, folder)
    d = docs(client, settings)
    assert (cited(d[ex("b")]), cited(d[ex("c")])) == (([], 0), ([ex("a")], 1))


def test_a_full_rebuild_links_its_new_index_before_promotion(settings, client, seed_dir):
    write(seed_dir, "x.txt", "x", related=("y",))
    go(settings, client, seed_dir)
    write(seed_dir, "y.txt", "y", related=("x",))
    report = go(settings, client, seed_dir, full_rebuild=True)
    assert any(n.startswith("links: 4 articles updated (4 checked") for n in report.notes), report.notes
    d = docs(client, settings)
    assert linked(d[TC_ID])[CD_ID] is True and cited(d[CD_ID]) == ([TC_ID], 1)
    assert linked(d[ex("x")]) == {ex("y"): True} and cited(d[ex("x")]) == ([ex("y")], 1)
    assert cited(d[ex("y")]) == ([ex("x")], 1)
    versions_are_the_ledger_seqs(client, settings, seed_dir)
