"""Stage 3, normalize: ``SeedRecord`` -> ``Document`` (the OpenSearch ``_source`` plus its ``_id``).

- Human text (titles, excerpts, provider names, topics; nested ``related[]`` too) is repaired with
  ``pipeline.stages.textfix`` and every repair is recorded on the document.
- Dates become UTC ISO-8601 (``2021-10-06T11:10:00Z``, ``pipeline.times``); no offset means UTC.
- Topics get one canonical form per topic, so facets do not split on case or spacing (``canonical_topic``).
- Every keyword facet (topics, provider name and domain, category, type) goes through one cleaning rule,
  ``pipeline.stages.facets.facet_value``: no invisible format characters, NFC, one kind of space.
- Human text that still looks broken after repair is flagged: ``text_quality`` (clean / repaired /
  damaged) and ``text_quality_fields`` (``pipeline.stages.facets``).
- Article URLs get a canonical form (``pipeline.urls.canonical_url``) and the document id is derived from
  it (``document_id``): the same article in two files is one document, and a re-run overwrites it.
- A related article gets the id its URL would have as a document (``related[].id``), so linking it needs
  no URL work later; ``related[].linked``, ``cited_by`` and ``cited_by_count`` start empty here and are
  set after the run's writes (``pipeline.run.linking``), because only the index knows what is in it.
- URLs, ids, image URLs and ``secured`` are never passed through text repair.
- Unknown seed fields are kept under ``extra`` (stored, not indexed: see the mapping).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.stages import facets
from pipeline.stages.textfix import fix_text
from pipeline.times import utc_iso
from pipeline.types import Document, Repair, SeedRecord
from pipeline.urls import canonical_url, identity

TOPICS_FILE = Path(__file__).resolve().parent.parent / "data" / "topics.json"  # pipeline/data/, package data
ID_HEX_CHARS = 32  # 128 bits of sha256: collisions are not a practical concern


# ----------------------------------------------------------------------------- URLs and ids
def document_id(url: str) -> str:
    """Stable document id from the article URL. ``http`` and ``https`` forms of one URL share an id."""
    return hashlib.sha256(identity(url).encode("utf-8")).hexdigest()[:ID_HEX_CHARS]


# ----------------------------------------------------------------------------- topics
@lru_cache(maxsize=1)
def _topic_display() -> dict[str, str]:
    data = json.loads(TOPICS_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


TOPIC_FORM: facets.Form = "NFKC"  # topics are tags: compatibility variants (fullwidth, ligatures) are the same tag


def topic_key(topic: str) -> str:
    """The identity of a topic: the facet cleaning rule in NFKC (``facets.clean``), casefolded."""
    return facets.clean(topic, TOPIC_FORM).casefold()


def canonical_topic(topic: str) -> str:
    """One display form per topic key, so ``ai``, ``AI `` and ``Ai`` facet as one value ``AI``.

    A known key uses ``pipeline/data/topics.json``; otherwise a topic written all in one case is
    title-cased word by word (``computer vision``/``COMPUTER VISION`` -> ``Computer Vision``); a
    mixed-case topic (``iPhone``, ``OpenAI``) is kept as written, whitespace collapsed.

    The text is ``facets.facet_value`` in NFKC rather than the NFC of the other facets: a topic is a tag
    from a small vocabulary, so ``ＡＩ`` (fullwidth) is the topic ``AI``; NFKC output is also NFC."""
    text = facets.facet_value(topic, TOPIC_FORM)
    key = text.casefold()
    known = _topic_display().get(key)
    if known:
        return known
    if text == text.lower() or text == text.upper():
        return " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))
    return text


def canonical_topics(topics: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for t in topics:
        canon = canonical_topic(t)
        if canon:
            seen.setdefault(topic_key(canon), canon)
    return list(seen.values())


# ----------------------------------------------------------------------------- the document
class _Repairs:
    def __init__(self) -> None:
        self.items: list[Repair] = []
        self.damaged: list[str] = []  # where repaired text still looks broken (facets.damaged)

    def text(self, value: str | None, where: str) -> str | None:
        if value is None:
            return None
        fixed = fix_text(value)
        if fixed.changed:
            self.items.append(Repair(where, fixed.steps))
        if facets.damaged(fixed.text):
            self.damaged.append(where)
        return fixed.text.strip()

    def facet(self, value: str, where: str) -> str:
        """Human text that is also a keyword facet (a provider's name): ``facets.facet_value``, with its
        repair recorded and its damage flagged like any human text."""
        fixed = fix_text(facets.clean(value))
        if fixed.changed:
            self.items.append(Repair(where, fixed.steps))
        if facets.damaged(fixed.text):
            self.damaged.append(where)
        return facets.clean(fixed.text)


def _images(images: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for img in images or []:
        item: dict[str, Any] = {"url": img["url"].strip()}
        for src, dst in (("width", "width"), ("height", "height"), ("isCached", "is_cached")):
            if img.get(src) is not None:
                item[dst] = img[src]
        out.append(item)
    return out


def _provider(p: dict[str, Any] | None, where: str, fix: _Repairs) -> dict[str, Any] | None:
    if not p:
        return None
    out: dict[str, Any] = {}
    if p.get("name") is not None:
        out["name"] = fix.facet(p["name"], f"{where}.name")
    if p.get("domain") is not None:
        out["domain"] = facets.facet_value(p["domain"]).lower().rstrip(".")
    if p.get("images"):
        out["images"] = _images(p["images"])
    return out


def _urls(f: dict[str, Any]) -> dict[str, str]:
    names = {"originalUrl": "original", "webUrl": "web", "ampWebUrl": "amp", "cdnAmpWebUrl": "cdn_amp"}
    return {dst: f[src] for src, dst in names.items() if f.get(src)}


def _related(r: dict[str, Any], where: str, fix: _Repairs) -> dict[str, Any]:
    out: dict[str, Any] = {"title": fix.text(r["title"], f"{where}.title")}
    if r.get("excerpt") is not None:
        out["excerpt"] = fix.text(r["excerpt"], f"{where}.excerpt")
    if r.get("publishedDateTime") is not None:
        out["published_at"] = utc_iso(r["publishedDateTime"])
    article_url = r.get("originalUrl") or r.get("webUrl")
    if article_url:
        out["url"] = canonical_url(article_url)
        out["id"] = document_id(article_url)
    out["linked"] = False  # true once the article ``id`` names is indexed (pipeline.run.linking)
    out["urls"] = _urls(r)
    if r.get("type") is not None:
        out["type"] = facets.facet_value(r["type"]).lower()
    provider = _provider(r.get("provider"), f"{where}.provider", fix)
    if provider:
        out["provider"] = provider
    for key in ("quality", "heat"):
        if r.get(key) is not None:
            out[key] = r[key]
    out["images"] = _images(r.get("images"))
    if r.get("_extra"):
        out["extra"] = r["_extra"]
    return out


def to_document(record: SeedRecord) -> Document:
    """Build the document for one validated record. Pure (no I/O); never fails on validated data."""
    f = record.fields
    fix = _Repairs()
    article_url = f.get("originalUrl") or f["webUrl"]
    doc_id = document_id(article_url)
    source: dict[str, Any] = {
        "id": doc_id,
        "url": canonical_url(article_url),
        "urls": _urls(f),
        "title": fix.text(f["title"], "title"),
        "published_at": utc_iso(f["publishedDateTime"]),
    }
    if f.get("excerpt") is not None:
        source["excerpt"] = fix.text(f["excerpt"], "excerpt")
    for key in ("category", "type"):
        if f.get(key) is not None:
            source[key] = facets.facet_value(f[key]).lower()
    for key in ("quality", "heat", "published"):
        if f.get(key) is not None:
            source[key] = f[key]
    provider = _provider(f.get("provider"), "provider", fix)
    if provider:
        source["provider"] = provider
    source["topics"] = canonical_topics(f.get("topics") or [])
    source["images"] = _images(f.get("images"))
    source["related"] = [_related(r, f"related[{i}]", fix) for i, r in enumerate(f.get("related") or [])]
    source["cited_by"] = []  # the indexed articles citing this one, set after the run's writes
    source["cited_by_count"] = 0
    if f.get("secured") is not None:
        source["secured"] = f["secured"]  # opaque: never repaired, never indexed
    if f.get("_extra"):
        source["extra"] = f["_extra"]
    source["seed"] = {
        "path": record.seed.rel,
        "sha256": record.seed.sha256,
        "encoding": f.get("_encoding", "utf-8"),
    }
    source["repairs"] = [{"field": r.field, "steps": list(r.steps)} for r in fix.items]
    source["repaired_fields"] = len(fix.items)
    source["text_quality"], source["text_quality_fields"] = facets.text_quality(
        fix.damaged, [r.field for r in fix.items]
    )
    if record.warnings:
        source["warnings"] = list(record.warnings)
    return Document(id=doc_id, source=source, seed=record.seed, version=record.seed.seq, repairs=tuple(fix.items))


def normalize(record: SeedRecord) -> Document:
    """``to_document`` as a stage. Validation already refused what cannot become a document, so an
    exception here is a bug in this code, not bad data: it is raised, and the per-seed boundary
    (``pipeline.run.seedpath``) makes it that seed's ``internal_error`` instead of a quarantine that
    would hide it."""
    return to_document(record)
