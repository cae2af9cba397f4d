"""Contract: every field the pipeline writes exists in mappings/articles.template.json with a
compatible type (the index is ``dynamic: strict``, so a drift would fail at index time)."""

from __future__ import annotations

from datetime import datetime

import pytest

from devtools.seedfile import parse_seed
from pipeline import types as types_
from pipeline.sources.folder import discover
from pipeline.stages.images import annotate
from pipeline.stages.normalize import normalize
from pipeline.stores.indices import article_mapping, load_template
from tests.conftest import DATA, SAMPLE_SEEDS

COMPATIBLE = {
    str: {"keyword", "text", "date"},
    bool: {"boolean"},
    int: {"integer", "short", "long"},
    float: {"float", "double", "scaled_float"},
}


def _documents():
    out = []
    for folder in (SAMPLE_SEEDS, DATA / "seeds" / "good"):
        seeds, _ = discover(folder)
        out += [normalize(parse_seed(s)) for s in seeds]
    verdicts = {
        u: types_.ImageVerdict(
            url=u, status="broken", http_code=404, reason="HTTP 404 Not Found", checked_at="2026-11-22T00:00:00Z"
        )
        for d in out
        for u in annotate.collect_image_urls(d.source)
    }
    return [{**annotate.annotate_document(d.source, verdicts), "indexed_at": "2026-11-22T00:00:00Z"} for d in out]


def _check(value, mapping: dict, path: str, problems: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for v in value:
            _check(v, mapping, path, problems)
        return
    if mapping.get("enabled") is False:
        return
    if isinstance(value, dict):
        props = mapping.get("properties")
        if props is None:
            problems.append(f"{path}: object in the document, {mapping.get('type')} in the mapping")
            return
        for key, v in value.items():
            if key not in props:
                problems.append(f"{path}.{key}: not in the mapping")
            else:
                _check(v, props[key], f"{path}.{key}", problems)
        return
    allowed = COMPATIBLE[type(value)]
    if mapping.get("type") not in allowed:
        problems.append(f"{path}: {type(value).__name__} value, mapping type {mapping.get('type')}")


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: d["seed"]["path"])
def test_document_fits_mapping(doc):
    problems: list[str] = []
    _check(doc, {"properties": article_mapping()["properties"]}, "$", problems)
    assert problems == []


def test_mapping_is_strict_and_secured_is_not_indexed():
    mapping = article_mapping()
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["secured"] == {"type": "keyword", "index": False, "doc_values": False}
    assert mapping["properties"]["extra"] == {"type": "object", "enabled": False}


def test_image_mapping_matches_the_checker():
    props = article_mapping()["properties"]
    assert props["images"]["properties"]["check"] == annotate.IMAGE_CHECK_MAPPING
    for name, spec in annotate.DOCUMENT_FACETS_MAPPING.items():
        assert props[name] == spec


def test_dates_in_documents_are_utc_iso():
    for doc in _documents():
        datetime.strptime(doc["published_at"], "%Y-%m-%dT%H:%M:%SZ")


def test_templates_load():
    for name in ("articles.template.json", "deadletter.template.json", "ledger.template.json"):
        assert load_template(name)["template"]["mappings"]["dynamic"] == "strict"


def test_the_validators_integer_range_is_the_mapped_type():
    """parse refuses integers outside ``INTEGER_MIN..INTEGER_MAX``: every seed integer it checks (quality,
    heat, image width/height, at the top, in provider and in related) must be mapped as a 32-bit ``integer``."""
    from pipeline.stages.validate import INTEGER_MAX, INTEGER_MIN

    props = article_mapping()["properties"]
    image = ("width", "height")
    paths = [("quality",), ("heat",), ("related", "quality"), ("related", "heat")]
    for owner in (("images",), ("provider", "images"), ("related", "images"), ("related", "provider", "images")):
        paths += [(*owner, key) for key in image]
    for path in paths:
        node = {"properties": props}
        for part in path:
            node = node["properties"][part]
        assert node["type"] == "integer", path
    assert (INTEGER_MIN, INTEGER_MAX) == (-(2**31), 2**31 - 1)
