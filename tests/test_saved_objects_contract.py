"""The saved objects' contract with the indices they read (dashboards/seednews.ndjson).

* Fields: every field an index pattern, visualization, saved search or dashboard names exists in the mapping
  the pipeline installs for that pattern's indices (found the way OpenSearch finds it: the installed index
  template whose pattern matches the index names, highest priority first), is searchable where it is queried
  and aggregatable (keyword, number, date, boolean: not text) where it is aggregated or sorted on; and it is
  in the pattern's saved field list, so Dashboards finds it without asking the cluster. A mutated object
  fails the check: the checker is shown to catch each kind of slip.
* Clean install: each pattern saves exactly the fields of its installed mapping, and OpenSearch's
  ``_field_caps`` on an empty index created from the installed templates agrees on every type, searchable
  and aggregatable flag (no document, no refusal needed).
* Opening on data: each dashboard restores a saved range that covers the samples' publication dates (2021),
  checked with OpenSearch's own date math.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.dashboards import objects as objs
from pipeline.dashboards.fields import META_FIELDS, aggregatable, mapping_fields, searchable
from pipeline.stores import deadletters, indices, ledger
from pipeline.stores.imagecache import CACHE_INDEX_MAPPING, DEFAULT_CACHE_INDEX
from tests.conftest import ROOT, SAMPLE_SEEDS
from tests.test_dashboards import DQL

NDJSON = ROOT / "dashboards" / "seednews.ndjson"
Obj = dict[str, Any]
Template = dict[str, Any]
META_NAMES = {m["name"] for m in META_FIELDS}
VERSION_SUFFIX = "-v20260101000000000000"  # what indices.new_index_name appends to an alias's base


# ============================================================================ what the pipeline installs
class _TemplateRecorder:
    """Stands in for an opensearch-py client: keeps the index templates the pipeline puts."""

    def __init__(self) -> None:
        self.templates: dict[str, Template] = {}
        self.indices = SimpleNamespace(put_index_template=self._put)

    def _put(self, name: str, body: Template) -> None:
        self.templates[name] = body


def installed_templates() -> list[Template]:
    """The index templates the pipeline installs for the names the saved objects read, and the image
    cache's mapping (created with the index rather than by a template)."""
    rec = _TemplateRecorder()
    indices.ensure_templates(rec, objs.ARTICLES)
    ledger.ensure_template(rec, objs.LEDGER)
    deadletters.ensure_template(rec, objs.DEADLETTER)
    cache = {"index_patterns": [DEFAULT_CACHE_INDEX], "template": {"mappings": CACHE_INDEX_MAPPING}}
    return [*rec.templates.values(), cache]


def installed_mapping(title: str, templates: list[Template]) -> dict[str, Any]:
    """The mapping of the indices an index pattern title reads: the title itself (a concrete index) or the
    versioned indices behind it (an alias), from the highest-priority template that matches, as OpenSearch
    picks a composable template."""
    names = (title, title + VERSION_SUFFIX)
    matching = [t for t in templates if any(fnmatch.fnmatchcase(n, p) for n in names for p in t["index_patterns"])]
    assert matching, f"no installed template covers {title}"
    top = max(t.get("priority", 0) for t in matching)
    (chosen,) = [t for t in matching if t.get("priority", 0) == top]
    return chosen["template"]["mappings"]


# ============================================================================ what the objects name
def _objects() -> list[Obj]:
    return [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines()]


def _source(obj: Obj) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def _pattern_ids(obj: Obj, by_id: dict[str, Obj]) -> list[str]:
    """The index patterns an object reads: its own reference, or (a dashboard) its panels'."""
    refs = [r for r in obj["references"] if r["type"] == "index-pattern"]
    if refs:
        return [r["id"] for r in refs]
    return sorted({p for r in obj["references"] if r["id"] in by_id for p in _pattern_ids(by_id[r["id"]], by_id)})


def _query_fields(source: dict[str, Any]) -> set[str]:
    """Fields a search source queries: its DQL and its filters."""
    _, fields = DQL.translate(source["query"]["query"])
    return fields | {f["meta"]["key"] for f in source.get("filter", []) if f.get("meta", {}).get("key")}


def uses(obj: Obj) -> Iterator[tuple[str, str]]:
    """``(field, how)`` for every field ``obj`` names; ``how`` is ``queried``, ``aggregated`` (aggregations,
    sorting), ``time`` (the time filter: a date, aggregated by the time picker's histogram) or ``shown``
    (columns, formats, the saved field list)."""
    attrs = obj["attributes"]
    if obj["type"] == "index-pattern":
        yield attrs["timeFieldName"], "time"
        yield from ((name, "shown") for name in json.loads(attrs["fieldFormatMap"]))
        yield from ((f["name"], "shown") for f in json.loads(attrs["fields"]) if f["name"] not in META_NAMES)
        return
    yield from ((name, "queried") for name in _query_fields(_source(obj)))
    if obj["type"] == "visualization":
        for agg in json.loads(attrs["visState"])["aggs"]:
            if "field" in agg["params"]:
                yield agg["params"]["field"], "aggregated"
    if obj["type"] == "search":
        yield from ((name, "shown") for name in attrs["columns"])
        yield from ((name, "aggregated") for name, _direction in attrs["sort"])


def problems(objects: list[Obj], templates: list[Template]) -> list[str]:
    """Every field an object names that its indices' installed mapping lacks, cannot serve the way it is
    used, or that the index pattern's saved field list lacks."""
    by_id = {o["id"]: o for o in objects}
    out: list[str] = []
    for obj in objects:
        patterns = [obj["id"]] if obj["type"] == "index-pattern" else _pattern_ids(obj, by_id)
        for ip_id in patterns:
            attrs = by_id[ip_id]["attributes"]
            fields = mapping_fields(installed_mapping(attrs["title"], templates))
            saved = {f["name"] for f in json.loads(attrs.get("fields", "[]"))}
            for name, how in uses(obj):
                where = f"{obj['type']} {obj['id']}: {name!r} ({how}) on {attrs['title']}"
                if name not in fields:
                    out.append(f"{where}: not in the installed mapping")
                    continue
                if name not in saved:
                    out.append(f"{where}: not in the index pattern's saved fields")
                if how == "queried" and not searchable(fields[name]):
                    out.append(f"{where}: not searchable")
                if how in ("aggregated", "time") and not aggregatable(fields[name]):
                    out.append(f"{where}: not aggregatable ({fields[name]['type']})")
                if how == "time" and fields[name]["type"] not in ("date", "date_nanos"):
                    out.append(f"{where}: not a date ({fields[name]['type']})")
    return out


def test_every_field_named_exists_and_serves_its_use():
    assert problems(_objects(), installed_templates()) == []


def test_the_checker_reads_every_kind_of_object():
    named = {(o["type"], name, how) for o in _objects() for name, how in uses(o)}
    assert ("visualization", "reason.keyword", "aggregated") in named
    assert ("visualization", "pending", "queried") in named
    assert ("search", "seed.path", "shown") in named and ("search", "failed_at", "aggregated") in named
    assert ("index-pattern", "published_at", "time") in named
    assert {t for t, _, _ in named} == {"index-pattern", "visualization", "search"}  # dashboards: query empty


def _vis_state(obj: Obj, change: Callable[[dict[str, Any]], None]) -> None:
    state = json.loads(obj["attributes"]["visState"])
    change(state)
    obj["attributes"]["visState"] = json.dumps(state)


def _set_query(obj: Obj, query: str) -> None:
    source = _source(obj)
    source["query"]["query"] = query
    obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"] = json.dumps(source)


def _set_agg_field(agg_id: str, field: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        _vis_state(obj, lambda s: next(a for a in s["aggs"] if a["id"] == agg_id)["params"].update(field=field))

    return change


def _drop_saved_field(name: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        saved = [f for f in json.loads(obj["attributes"]["fields"]) if f["name"] != name]
        obj["attributes"]["fields"] = json.dumps(saved)

    return change


MUTATIONS: dict[str, tuple[str, Callable[[Obj], None], str]] = {
    # name: (object id, change, the problem expected)
    "misspelt terms field": (
        objs.VIS_TOPICS,
        _set_agg_field("2", "topic"),
        "'topic' (aggregated) on seednews-articles: not in the installed mapping",
    ),
    "text field aggregated": (
        objs.VIS_DEADLETTERS,
        _set_agg_field("2", "reason"),
        "'reason' (aggregated) on seednews-articles-deadletter: not aggregatable (text)",
    ),
    "field of another index": (
        objs.VIS_LEDGER_STATES,
        _set_agg_field("2", "image_health"),
        "'image_health' (aggregated) on seednews-articles-ledger: not in the installed mapping",
    ),
    "unknown field queried": (
        objs.SEARCH_DEADLETTERS,
        lambda o: _set_query(o, "pending:true and retried:false"),
        "'retried' (queried) on seednews-articles-deadletter: not in the installed mapping",
    ),
    "unindexed field queried": (
        objs.VIS_TOPICS,
        lambda o: _set_query(o, "secured:x"),
        "'secured' (queried) on seednews-articles: not searchable",
    ),
    "dashboard query on a missing field": (
        objs.DASH_OPERATORS,
        lambda o: _set_query(o, "published:true"),
        "dashboard seednews-dashboard-operators: 'published' (queried) on seednews-articles-ledger: not in the "
        "installed mapping",
    ),
    "missing column": (
        objs.SEARCH_UNPUBLISHED,
        lambda o: o["attributes"]["columns"].append("author"),
        "'author' (shown) on seednews-articles: not in the installed mapping",
    ),
    "sort on text": (
        objs.SEARCH_QUARANTINED,
        lambda o: o["attributes"].update(sort=[["reason", "desc"]]),
        "'reason' (aggregated) on seednews-articles-ledger: not aggregatable (text)",
    ),
    "time field of another index": (
        objs.IP_LEDGER,
        lambda o: o["attributes"].update(timeFieldName="failed_at"),
        "index-pattern seednews-ip-ledger: 'failed_at' (time) on seednews-articles-ledger: not in the "
        "installed mapping",
    ),
    "time field that is not a date": (
        objs.IP_LEDGER,
        lambda o: o["attributes"].update(timeFieldName="seq"),
        "index-pattern seednews-ip-ledger: 'seq' (time) on seednews-articles-ledger: not a date (long)",
    ),
    "saved field list missing a used field": (
        objs.IP_DEADLETTER,
        _drop_saved_field("reason.keyword"),
        "visualization seednews-vis-pending-dead-letters: 'reason.keyword' (aggregated) on "
        "seednews-articles-deadletter: not in the index pattern's saved fields",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_wrong_field_fails_the_check(mutation):
    oid, change, expected = MUTATIONS[mutation]
    mutated = copy.deepcopy(_objects())
    change(next(o for o in mutated if o["id"] == oid))
    found = problems(mutated, installed_templates())
    assert any(expected in p for p in found), found


def test_the_installed_mapping_decides_not_the_file_names():
    templates = installed_templates()
    assert "reason" in mapping_fields(installed_mapping(objs.DEADLETTER, templates))  # the dead-letter template
    assert "state" in mapping_fields(installed_mapping(objs.LEDGER, templates))  # not the articles' template
    assert "host" in mapping_fields(installed_mapping(DEFAULT_CACHE_INDEX, templates))
    with pytest.raises(AssertionError, match="no installed template"):
        installed_mapping("someone-elses-index", templates)


# ============================================================================ a clean install
def _saved_fields(ip_id: str) -> dict[str, dict[str, Any]]:
    ip = next(o for o in _objects() if o["id"] == ip_id)
    return {f["name"]: f for f in json.loads(ip["attributes"]["fields"])}


@pytest.mark.parametrize("ip_id", sorted(objs.INDEX_PATTERNS))
def test_each_pattern_saves_exactly_the_installed_fields(ip_id):
    title = objs.INDEX_PATTERNS[ip_id][0]
    saved = _saved_fields(ip_id)
    mapped = mapping_fields(installed_mapping(title, installed_templates()))
    assert set(saved) == set(mapped) | META_NAMES
    for name, spec in mapped.items():
        f = saved[name]
        assert f["esTypes"] == [spec["type"]], name
        assert (f["searchable"], f["aggregatable"]) == (searchable(spec), aggregatable(spec)), name
    # Dashboards keeps a saved list as it is only when every entry carries these three flags
    assert all({"searchable", "aggregatable", "readFromDocValues"} <= set(f) for f in saved.values())
    assert saved["_id"]["type"] == "string" and not saved["_source"]["aggregatable"]


def _create_from_templates(client, base: str) -> dict[str, str]:
    """Empty indices made by the pipeline's own set-up code: index pattern id -> index name."""
    articles = indices.create_index(client, base)
    ledger_index = ledger.paired_name(articles, base, f"{base}-ledger")
    ledger.create_paired(client, f"{base}-ledger", ledger_index)
    deadletters.ensure_template(client, f"{base}-deadletter")
    client.indices.create(index=f"{base}-deadletter")
    return {objs.IP_ARTICLES: articles, objs.IP_LEDGER: ledger_index, objs.IP_DEADLETTER: f"{base}-deadletter"}


@pytest.fixture
def empty_indices(settings, client):
    base = settings.index_base
    try:
        yield _create_from_templates(client, base)
    finally:
        for name in (f"{base}-ledger", f"{base}-deadletter"):
            client.indices.delete_index_template(name=name, ignore=[404])


def test_field_caps_of_empty_indices_agree_with_the_saved_fields(client, empty_indices):
    for ip_id, index in empty_indices.items():
        assert client.count(index=index)["count"] == 0
        caps = client.field_caps(index=index, fields="*")["fields"]
        saved = _saved_fields(ip_id)
        for name, spec in saved.items():
            if name in META_NAMES:
                continue
            (es_type,) = spec["esTypes"]
            assert name in caps and es_type in caps[name], (ip_id, name, caps.get(name))
            cap = caps[name][es_type]
            assert (spec["searchable"], spec["aggregatable"]) == (cap["searchable"], cap["aggregatable"]), (
                ip_id,
                name,
                cap,
            )
        leaves = {n for n, c in caps.items() if not n.startswith("_") and not ({"object", "nested"} & set(c))}
        assert leaves == set(saved) - META_NAMES, ip_id


# ============================================================================ opening on data
def _sample_dates() -> set[str]:
    """The samples' publication dates (their top-level ``publishedDateTime``)."""
    found = (
        re.search(r"(?m)^publishedDateTime: (\S+)$", p.read_text(encoding="utf-8")) for p in SAMPLE_SEEDS.glob("*.txt")
    )
    return {m.group(1) for m in found if m}


@pytest.mark.parametrize("did", [objs.DASH_ANALYSTS, objs.DASH_OPERATORS])
def test_each_dashboard_restores_a_range_that_covers_the_samples(did, client, empty_indices):
    attrs = next(o for o in _objects() if o["id"] == did)["attributes"]
    assert attrs["timeRestore"] is True
    index = empty_indices[objs.IP_ARTICLES]
    samples = _sample_dates()
    assert samples and all(d.startswith("2021-") for d in samples)
    older, far_ahead = "1999-12-31T23:00:00Z", "2999-01-01T00:00:00Z"
    for n, published in enumerate(sorted(samples | {older, far_ahead})):
        client.index(index=index, id=str(n), body={"id": str(n), "published_at": published}, refresh=True)
    in_range = {"range": {"published_at": {"gte": attrs["timeFrom"], "lte": attrs["timeTo"]}}}
    found = client.search(index=index, body={"query": in_range, "size": 10})["hits"]["hits"]
    assert {h["_source"]["published_at"] for h in found} == samples | {older}
    a_year = {"range": {"published_at": {"gte": "now-1y", "lte": "now"}}}  # what the analysts' dashboard had
    assert client.search(index=index, body={"query": a_year})["hits"]["hits"] == []
