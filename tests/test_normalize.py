import json

import pytest

from devtools.seedfile import parse_seed
from pipeline.policy import copies_by_article
from pipeline.sources.folder import discover
from pipeline.stages.normalize import (
    canonical_topic,
    canonical_topics,
    document_id,
    normalize,
    utc_iso,
)
from pipeline.types import Document
from tests.conftest import DATA, SAMPLE_SEEDS

TOPICS = json.loads((DATA / "topic_cases.json").read_text(encoding="utf-8"))["groups"]


def sample_docs(folder=SAMPLE_SEEDS) -> list[Document]:
    seeds, _ = discover(folder)
    return [normalize(parse_seed(s)) for s in seeds]


@pytest.mark.parametrize("group", TOPICS, ids=[g["canonical"] for g in TOPICS])
def test_topic_variants_collapse(group):
    assert {canonical_topic(v) for v in group["variants"]} == {group["canonical"]}


def test_canonical_topics_dedupes_keeping_order():
    assert canonical_topics(["computer vision", "AI", "Computer Vision ", "ai"]) == ["Computer Vision", "AI"]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("2021-10-06T11:10:00Z", "2021-10-06T11:10:00Z"),
        ("2021-10-06T13:10:00+02:00", "2021-10-06T11:10:00Z"),
        ("2021-10-06T11:10:00.123456Z", "2021-10-06T11:10:00Z"),
        ("2021-10-06 11:10:00", "2021-10-06T11:10:00Z"),
        ("2021-10-06", "2021-10-06T00:00:00Z"),
    ],
)
def test_dates_become_utc_iso(raw, expected):
    assert utc_iso(raw) == expected


def test_sample_documents():
    tc, cd = sample_docs()
    assert tc.source["topics"] == ["AI"]
    assert cd.source["topics"] == ["Computer Vision", "AI"]
    # mojibake repaired in the article and inside related[]
    assert "surveillance—a development" in cd.source["excerpt"]
    assert "surveillance—a development" in tc.source["related"][1]["excerpt"]
    assert {r.field for r in cd.repairs} == {"excerpt"}
    assert {r.field for r in tc.repairs} == {"related[1].excerpt"}
    # URLs, images and the secured blob are untouched
    raw = (SAMPLE_SEEDS / "002_2c91f7d39cae87f0.txt").read_text(encoding="utf-8")
    assert cd.source["secured"] in raw
    assert cd.source["images"][0]["url"] in raw
    assert tc.source["provider"]["images"][0]["url"] == "/assets/images/organizations/techcrunch.com-50x50.jpg"
    assert cd.id == document_id(cd.source["urls"]["original"]) == cd.source["id"]
    # the related article in one file and the article in the other are the same article
    assert tc.source["related"][1]["id"] == cd.id


def test_link_fields_start_empty_for_finalize_to_set():
    """Normalize cannot know what is indexed: every related entry starts unlinked and no article cited;
    ``pipeline.run.linking`` sets them after the run's writes (tests/test_links.py)."""
    for doc in sample_docs():
        assert [r["linked"] for r in doc.source["related"]] == [False] * len(doc.source["related"])
        assert (doc.source["cited_by"], doc.source["cited_by_count"]) == ([], 0)


def test_correct_text_is_not_restyled(tmp_path):
    text = "“Fundamental rights are unconditional,” — it’s naïve; 東京; ﬁnance; ＡＢ"
    (tmp_path / "a.txt").write_text(
        f'---\ntitle: "{text}"\nexcerpt: "{text}"\npublishedDateTime: 2021-10-06\nwebUrl: "https://example.com/a"\n---\n',
        encoding="utf-8",
    )
    (doc,) = sample_docs(tmp_path)
    assert doc.source["title"] == text and doc.source["excerpt"] == text
    assert doc.repairs == ()


def test_same_article_in_two_files_the_copy_ingested_last_wins(tmp_path):
    from dataclasses import replace

    body = '---\ntitle: "{t}"\npublishedDateTime: 2021-10-06\nwebUrl: "https://Example.com/a?utm_source=x"\n---\n'
    (tmp_path / "old.txt").write_text(body.format(t="old"), encoding="utf-8")
    (tmp_path / "new.txt").write_text(body.format(t="new"), encoding="utf-8")
    docs = sample_docs(tmp_path)
    # the ingest sequence (planning assigns it), not the file's mtime, is the version
    docs = [replace(d, version=2 if d.seed.rel == "new.txt" else 1) for d in docs]
    ((winner, loser),) = copies_by_article(docs).values()
    assert winner.source["title"] == "new"
    assert (loser.seed.rel, winner.seed.rel) == ("old.txt", "new.txt")


def test_unknown_fields_go_to_extra():
    (doc,) = [d for d in sample_docs(DATA / "seeds" / "good") if d.seed.rel == "unknown_fields.txt"]
    assert doc.source["extra"]["sentiment"] == 0.7
    assert doc.source["related"][0]["extra"] == {"mood": "happy"}
    assert "sentiment" not in doc.source
