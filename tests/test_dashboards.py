"""OpenSearch Dashboards as code (dashboards/seednews.ndjson, pipeline/dashboards/objects.py,
pipeline/dashboards/load.py).

Dashboards itself cannot run here, so this tests what can be tested without it:

* the file: one JSON object per line, unique stable ids, every reference resolves inside the file,
  and it is exactly what the generator writes;
* the fields: every field a visualization or saved search uses exists in ``mappings/*.template.json``,
  is searchable where it is queried and aggregatable (keyword/number/date/boolean) where it aggregates;
* the answers: each visualization's DQL query + aggregations, translated into an OpenSearch request the
  way Dashboards builds it, run against a REAL node holding the two sample seeds (plus a quarantined, an
  invalid and a refused seed, and image checks against a loopback server) returns the expected buckets;
  each saved search finds the expected documents;
* the import command: the exact request (method, path, query, osd-xsrf, multipart body, auth) reaches an
  HTTP server on 127.0.0.1, and a refusal is reported naming the objects.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import shutil
import threading
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest

from pipeline import cli
from pipeline.dashboards import load as dash
from pipeline.dashboards import objects as objs
from pipeline.stages.normalize import canonical_topic
from tests import faultkit as fk
from tests.conftest import DATA, ROOT, SAMPLE_SEEDS

NDJSON = ROOT / "dashboards" / "seednews.ndjson"
MAPPINGS = ROOT / "mappings"

EXPECTED_OBJECTS = {  # id -> type; ids are part of the contract (overwrite-by-id import, links)
    "seednews-ip-articles": "index-pattern",
    "seednews-ip-ledger": "index-pattern",
    "seednews-ip-deadletter": "index-pattern",
    "seednews-vis-articles-per-topic": "visualization",
    "seednews-vis-articles-per-provider": "visualization",
    "seednews-vis-articles-over-time": "visualization",
    "seednews-vis-image-health": "visualization",
    "seednews-vis-text-quality": "visualization",
    "seednews-vis-ledger-states": "visualization",
    "seednews-vis-quarantine-reasons": "visualization",
    "seednews-vis-pending-dead-letters": "visualization",
    "seednews-search-unpublished-articles": "search",
    "seednews-search-broken-images": "search",
    "seednews-search-damaged-text": "search",
    "seednews-search-most-cited": "search",
    "seednews-search-quarantined-files": "search",
    "seednews-search-pending-dead-letters": "search",
    "seednews-dashboard-analysts": "dashboard",
    "seednews-dashboard-operators": "dashboard",
}


def _objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines()]


def _by_id() -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in _objects()}


def _search_source(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def _index_pattern_of(obj: dict[str, Any]) -> str:
    ref_name = _search_source(obj)["indexRefName"]
    (ref,) = [r for r in obj["references"] if r["name"] == ref_name]
    assert ref["type"] == "index-pattern"
    return ref["id"]


# ============================================================================ the file
def test_committed_file_is_the_generator_output():
    assert NDJSON.read_text(encoding="utf-8") == objs.render(), "run: .venv/bin/python -m pipeline.dashboards.objects"
    assert objs.main(["--check"]) == 0


def test_one_json_object_per_line_with_parseable_embedded_json():
    lines = NDJSON.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and all(line.strip() for line in lines[:-1])  # newline-terminated, no blank lines
    for line in lines[:-1]:
        obj = json.loads(line)
        assert isinstance(obj, dict) and set(obj) == {"id", "type", "attributes", "references"}
        assert obj["attributes"]["title"]
        for key in ("visState", "uiStateJSON", "panelsJSON", "optionsJSON", "fieldFormatMap"):
            if key in obj["attributes"]:
                json.loads(obj["attributes"][key])
        if "kibanaSavedObjectMeta" in obj["attributes"]:
            assert isinstance(_search_source(obj)["query"]["query"], str)


def test_ids_are_unique_and_stable():
    ids = [o["id"] for o in _objects()]
    assert len(ids) == len(set(ids))
    assert {o["id"]: o["type"] for o in _objects()} == EXPECTED_OBJECTS
    assert objs.render() == objs.render()  # deterministic: re-import overwrites the same objects byte for byte


def test_every_reference_resolves_inside_the_file():
    known = {(o["type"], o["id"]) for o in _objects()}
    seen_before: set[tuple[str, str]] = set()
    for obj in _objects():
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, (obj["id"], ref)
            assert (ref["type"], ref["id"]) in seen_before, f"{obj['id']} comes before {ref['id']}"
        used: set[str] = set()
        if obj["type"] in ("visualization", "search"):
            used.add(_search_source(obj)["indexRefName"])
            assert "index" not in _search_source(obj)  # ids live in references only
        if obj["type"] == "dashboard":
            panels = json.loads(obj["attributes"]["panelsJSON"])
            used |= {p["panelRefName"] for p in panels}
            assert all("id" not in p and "type" not in p for p in panels)
            assert len({p["panelIndex"] for p in panels}) == len(panels)
        assert used == set(names), obj["id"]
        seen_before.add((obj["type"], obj["id"]))


def test_dashboards_show_what_the_issue_asks_for():
    by_id = _by_id()

    def panels(did):
        return {r["id"] for r in by_id[did]["references"]}

    assert panels("seednews-dashboard-analysts") >= {
        "seednews-vis-articles-per-topic",
        "seednews-vis-articles-per-provider",
        "seednews-vis-articles-over-time",
        "seednews-vis-text-quality",
        "seednews-search-damaged-text",
        "seednews-search-most-cited",
    }
    assert panels("seednews-dashboard-operators") >= {
        "seednews-vis-ledger-states",
        "seednews-vis-quarantine-reasons",
        "seednews-vis-pending-dead-letters",
        "seednews-vis-image-health",
    }


# ============================================================================ the fields
def _mapping_fields(mapping_file: str) -> dict[str, dict[str, Any]]:
    """``{dotted field: its mapping}`` including multi-fields (``title.keyword``); objects excluded."""
    props = json.loads((MAPPINGS / mapping_file).read_text(encoding="utf-8"))["template"]["mappings"]["properties"]
    out: dict[str, dict[str, Any]] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            if "properties" in spec:
                walk(spec["properties"], path + ".")
                continue
            if spec.get("type", "object") == "object":
                continue  # enabled: false blobs: not fields
            out[path] = spec
            for sub, sub_spec in spec.get("fields", {}).items():
                out[f"{path}.{sub}"] = sub_spec

    walk(props, "")
    return out


_AGG_TYPES = {
    "keyword",
    "boolean",
    "date",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "unsigned_long",
}


def _searchable(spec: dict[str, Any]) -> bool:
    return spec.get("index", True) is not False


def _aggregatable(spec: dict[str, Any]) -> bool:
    return spec["type"] in _AGG_TYPES and spec.get("doc_values", True) is not False


def _fields_of(ip_id: str) -> dict[str, dict[str, Any]]:
    return _mapping_fields(objs.INDEX_PATTERNS[ip_id][2])


def test_index_patterns_titles_time_fields_and_formats_match_the_mappings():
    by_id = _by_id()
    expected = {
        "seednews-ip-articles": ("seednews-articles", "published_at"),
        "seednews-ip-ledger": ("seednews-articles-ledger", "updated_at"),
        "seednews-ip-deadletter": ("seednews-articles-deadletter", "failed_at"),
    }
    for ip_id, (title, time_field) in expected.items():
        attrs = by_id[ip_id]["attributes"]
        assert (attrs["title"], attrs["timeFieldName"]) == (title, time_field)
        fields = _fields_of(ip_id)
        assert fields[time_field]["type"] == "date"
        for name, fmt in json.loads(attrs["fieldFormatMap"]).items():
            assert name in fields, name
            assert fmt["id"] == "url" and fmt["params"]["type"] == "a"
    formats = json.loads(by_id["seednews-ip-articles"]["attributes"]["fieldFormatMap"])
    assert {"url", "images.url"} <= set(formats)


_TOKEN = re.compile(r'\s*(\(|\)|:|>=|<=|>|<|"[^"]*"|[^\s():<>"]+)')


class DQL:
    """The subset of DQL these saved objects use, translated the way Dashboards does: ``field:value``
    -> ``match``, ``field:(a or b)``, ``field > n`` -> ``range``, ``and``/``or``/``not``, parentheses.
    ``fields`` collects every field named."""

    def __init__(self, text: str) -> None:
        self.tokens = _TOKEN.findall(text)
        self.i = 0
        self.fields: set[str] = set()

    @classmethod
    def translate(cls, text: str) -> tuple[dict[str, Any], set[str]]:
        if not text.strip():
            return {"match_all": {}}, set()
        p = cls(text)
        query = p._or()
        assert p.i == len(p.tokens), f"unparsed DQL: {p.tokens[p.i :]}"
        return query, p.fields

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self) -> str:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _or(self) -> dict[str, Any]:
        parts = [self._and()]
        while (self._peek() or "").lower() == "or":
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}

    def _and(self) -> dict[str, Any]:
        parts = [self._not()]
        while (self._peek() or "").lower() == "and":
            self._next()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def _not(self) -> dict[str, Any]:
        if (self._peek() or "").lower() == "not":
            self._next()
            return {"bool": {"must_not": [self._not()]}}
        return self._primary()

    def _primary(self) -> dict[str, Any]:
        if self._peek() == "(":
            self._next()
            q = self._or()
            assert self._next() == ")"
            return q
        field = self._next()
        self.fields.add(field)
        op = self._next()
        if op in (">", ">=", "<", "<="):
            bound = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
            return {"range": {field: {bound: self._value()}}}
        assert op == ":", f"expected ':' after {field}"
        if self._peek() == "(":
            self._next()
            values = [self._value()]
            while (self._peek() or "").lower() == "or":
                self._next()
                values.append(self._value())
            assert self._next() == ")"
            return {"bool": {"should": [{"match": {field: v}} for v in values], "minimum_should_match": 1}}
        return {"match": {field: self._value()}}

    def _value(self) -> Any:
        tok = self._next()
        if tok.startswith('"'):
            return tok[1:-1]
        if tok in ("true", "false"):
            return tok == "true"
        return int(tok) if tok.isascii() and tok.isdigit() else tok


def test_dql_translator_knows_the_shapes_used():
    q, fields = DQL.translate(objs.Q_BROKEN_IMAGES)
    assert fields == {"image_health", "images_broken"}
    assert q == {
        "bool": {
            "minimum_should_match": 1,
            "should": [
                {
                    "bool": {
                        "should": [{"match": {"image_health": "some_broken"}}, {"match": {"image_health": "none_ok"}}],
                        "minimum_should_match": 1,
                    }
                },
                {"range": {"images_broken": {"gt": 0}}},
            ],
        }
    }
    assert DQL.translate("published:false") == ({"match": {"published": False}}, {"published"})
    assert DQL.translate("not state:indexed and attempts >= 2")[1] == {"state", "attempts"}


def _visualizations() -> list[dict[str, Any]]:
    return [o for o in _objects() if o["type"] == "visualization"]


def _searches() -> list[dict[str, Any]]:
    return [o for o in _objects() if o["type"] == "search"]


def test_every_field_used_exists_is_searchable_and_aggregatable_where_it_aggregates():
    for vis in _visualizations():
        fields = _fields_of(_index_pattern_of(vis))
        _, queried = DQL.translate(_search_source(vis)["query"]["query"])
        for name in queried:
            assert name in fields and _searchable(fields[name]), (vis["id"], name)
        state = json.loads(vis["attributes"]["visState"])
        assert state["title"] == vis["attributes"]["title"]
        for agg in state["aggs"]:
            if "field" in agg["params"]:
                name = agg["params"]["field"]
                assert name in fields, (vis["id"], name)
                assert _aggregatable(fields[name]), f"{vis['id']}: {name} ({fields[name]['type']}) cannot aggregate"
    for search in _searches():
        fields = _fields_of(_index_pattern_of(search))
        _, queried = DQL.translate(_search_source(search)["query"]["query"])
        for name in queried:
            assert name in fields and _searchable(fields[name]), (search["id"], name)
        for column in search["attributes"]["columns"]:
            assert column in fields, (search["id"], column)
        for sort_field, direction in search["attributes"]["sort"]:
            assert _aggregatable(fields[sort_field]) and direction in ("asc", "desc")


def test_the_checker_would_catch_a_text_field_in_an_aggregation():
    fields = _mapping_fields("ledger.template.json")
    assert not _aggregatable(fields["reason"]) and _aggregatable(fields["reason.keyword"])
    assert not _searchable(_mapping_fields("articles.template.json")["secured"])


def test_topic_facet_uses_the_canonical_topics_field():
    state = json.loads(_by_id()["seednews-vis-articles-per-topic"]["attributes"]["visState"])
    (terms,) = [a for a in state["aggs"] if a["type"] == "terms"]
    # topics holds canonical_topic() display forms; topics.folded is lower-cased for filtering only
    assert terms["params"]["field"] == "topics"


# ============================================================================ against a real node
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56


class _ImageHandler(http.server.BaseHTTPRequestHandler):
    """``/techcrunch.com/...`` and ``/static.techspot.com/...`` are images; everything else 404."""

    def log_message(self, *args) -> None:
        pass

    def _reply(self) -> None:
        good = self.path.startswith(("/techcrunch.com/", "/static.techspot.com/"))
        body, ctype, code = (PNG, "image/png", 200) if good else (b"not found", "text/plain", 404)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    do_GET = do_HEAD = _reply


@contextmanager
def _server(handler):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


DEAD_LETTER_REASON_START = "strict_dynamic_mapping_exception"


@pytest.fixture
def indexed(settings, client, tmp_path, monkeypatch):
    """The two sample seeds (their image URLs served by a loopback server: TechCrunch's image is fine,
    Common Dreams' is a 404), two seeds that are quarantined (bad YAML, bad date) and one whose document
    OpenSearch refuses (it carries a field the strict mapping does not know: dead letter; the values a
    seed can carry that the mapping refuses are refused by validation). Returns the run report."""
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions

    fk.refused_by_mapping(monkeypatch, "102_refused.txt")
    from pipeline.stages.images.config import ImageCheckConfig

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with _server(_ImageHandler) as (_srv, base):
        for src in sorted(SAMPLE_SEEDS.glob("*.txt")):
            text = src.read_text(encoding="utf-8")
            text = re.sub(r'(- url: ")https://', rf"\1{base}/", text)  # image URLs only
            assert '- url: "https://' not in text
            (seeds / src.name).write_text(text, encoding="utf-8")
        shutil.copy(DATA / "seeds" / "bad" / "invalid_yaml.txt", seeds / "100_invalid_yaml.txt")
        shutil.copy(DATA / "seeds" / "bad" / "bad_date.txt", seeds / "101_bad_date.txt")
        refused = (seeds / "000_9af88004a1e871b6.txt").read_text(encoding="utf-8")
        refused = refused.replace(
            "techcrunch.com/2021/10/06/european-parliament",
            "techcrunch.com/2021/10/06/refused-copy-of-european-parliament",
        )
        (seeds / "102_refused.txt").write_text(refused, encoding="utf-8")
        options = RunOptions(
            seed_dir=str(seeds),
            check_images=True,
            image_config=ImageCheckConfig(allow_networks=("127.0.0.1/32",), timeout=5.0, retries=0),
        )
        report = run(settings, options, client=client, emit=lambda _: None)
    assert (report.indexed, len(report.quarantined), report.n("dead_letter")) == (2, 2, 1), report.render()
    client.indices.refresh(index=f"{settings.index_base}*")
    return report


def _real_index(settings, ip_id: str) -> str:
    """The test's own index for an index pattern (tests use their own index base, not seednews-articles)."""
    title, _time_field, _ = objs.INDEX_PATTERNS[ip_id]
    assert title.startswith(objs.ARTICLES)
    return settings.index_base + title[len(objs.ARTICLES) :]


def _request_for(vis: dict[str, Any]) -> dict[str, Any]:
    """The search body Dashboards builds for a visualization: its DQL query, the time filter of the index
    pattern (the range of the dashboard that shows it), and the bucket aggregations nested in order
    (metric: count)."""
    ip_id = _index_pattern_of(vis)
    time_field = objs.INDEX_PATTERNS[ip_id][1]
    query, _ = DQL.translate(_search_source(vis)["query"]["query"])
    state = json.loads(vis["attributes"]["visState"])
    buckets = [a for a in state["aggs"] if a["enabled"] and a["schema"] != "metric"]
    assert [a["type"] for a in state["aggs"] if a["schema"] == "metric"] == ["count"]
    aggs: dict[str, Any] = {}
    for agg in reversed(buckets):
        p = agg["params"]
        if agg["type"] == "terms":
            assert p["orderBy"] == "1"  # the count metric
            body: dict[str, Any] = {"terms": {"field": p["field"], "size": p["size"], "order": {"_count": p["order"]}}}
            if p["missingBucket"]:
                body["terms"]["missing"] = "__missing__"
        elif agg["type"] == "date_histogram":
            assert p["interval"] == "d"
            body = {
                "date_histogram": {
                    "field": p["field"],
                    "calendar_interval": "1d",
                    "time_zone": "UTC",
                    "min_doc_count": p["min_doc_count"],
                }
            }
        else:
            raise AssertionError(f"no translation for {agg['type']}")
        if aggs:
            body["aggs"] = aggs
        aggs = {agg["id"]: body}
    (time_from, time_to), *others = {
        (d["attributes"]["timeFrom"], d["attributes"]["timeTo"])
        for d in _objects()
        if d["type"] == "dashboard" and vis["id"] in {r["id"] for r in d["references"]}
    }
    assert not others, f"{vis['id']} is on dashboards with different ranges"
    time_range = {"range": {time_field: {"gte": time_from, "lte": time_to, "format": "strict_date_optional_time"}}}
    return {"size": 0, "query": {"bool": {"filter": [query, time_range]}}, "aggs": aggs}


def _flatten(aggs: dict[str, Any], prefix: tuple = ()) -> dict[tuple, int]:
    (agg_id,) = [k for k in aggs if k.isdigit()]
    out: dict[tuple, int] = {}
    for b in aggs[agg_id]["buckets"]:
        key = (*prefix, b.get("key_as_string", b["key"]))
        inner = [k for k in b if k.isdigit()]
        out.update(_flatten(b, key) if inner else {key: b["doc_count"]})
    return out


def _run_vis(client, settings, vid: str) -> dict[tuple, int]:
    vis = _by_id()[vid]
    res = client.search(index=_real_index(settings, _index_pattern_of(vis)), body=_request_for(vis))
    return _flatten(res["aggregations"])


def test_visualizations_return_the_expected_buckets_on_the_sample_seeds(settings, client, indexed):
    topics = _run_vis(client, settings, "seednews-vis-articles-per-topic")
    assert topics == {("AI",): 2, ("Computer Vision",): 1}
    assert all(canonical_topic(key) == key for (key,) in topics)  # shown as their canonical display form
    assert _run_vis(client, settings, "seednews-vis-articles-per-provider") == {
        ("TechCrunch",): 1,
        ("Common Dreams",): 1,
    }
    assert _run_vis(client, settings, "seednews-vis-articles-over-time") == {
        ("2021-10-06T00:00:00Z",): 2
    }  # the field format: no millis
    # TechCrunch: its image answers 200 image/png (the provider logo is relative: not judged) -> all_ok;
    # Common Dreams: its only image is a 404 -> none_ok
    assert _run_vis(client, settings, "seednews-vis-image-health") == {("all_ok",): 1, ("none_ok",): 1}
    assert _run_vis(client, settings, "seednews-vis-ledger-states") == {
        ("indexed",): 2,
        ("quarantined",): 2,
        ("dead_letter",): 1,
    }
    assert _run_vis(client, settings, "seednews-vis-quarantine-reasons") == {
        (
            "yaml",
            "while scanning a quoted scalar at line 2, column 8: found unexpected end of stream at line 4, column 12",
        ): 1,
        ("validate", "field 'publishedDateTime' is not a date-time: 'last tuesday'"): 1,
    }
    (dl,) = client.search(index=settings.deadletter_index, body={"query": {"match_all": {}}})["hits"]["hits"]
    assert dl["_source"]["reason"].startswith(DEAD_LETTER_REASON_START)
    assert _run_vis(client, settings, "seednews-vis-pending-dead-letters") == {(dl["_source"]["reason"], 400): 1}


def test_pending_dead_letters_leave_replayed_ones_out(settings, client, indexed):
    (dl,) = client.search(index=settings.deadletter_index, body={"query": {"match_all": {}}})["hits"]["hits"]
    client.update(index=settings.deadletter_index, id=dl["_id"], body={"doc": {"pending": False}}, refresh=True)
    assert _run_vis(client, settings, "seednews-vis-pending-dead-letters") == {}
    assert _run_vis(client, settings, "seednews-vis-ledger-states")[("dead_letter",)] == 1


def _run_search(client, settings, sid: str) -> list[dict[str, Any]]:
    search = _by_id()[sid]
    query, _ = DQL.translate(_search_source(search)["query"]["query"])
    ((sort_field, direction),) = search["attributes"]["sort"]
    res = client.search(
        index=_real_index(settings, _index_pattern_of(search)),
        body={"query": query, "sort": [{sort_field: direction}], "size": 100},
    )
    return [h["_source"] for h in res["hits"]["hits"]]


def test_saved_searches_find_the_expected_documents(settings, client, indexed, tmp_path):
    unpublished = _run_search(client, settings, "seednews-search-unpublished-articles")
    assert [d["provider"]["name"] for d in unpublished] == ["Common Dreams"]
    broken = _run_search(client, settings, "seednews-search-broken-images")
    assert [(d["provider"]["name"], d["image_health"], d["images_broken"]) for d in broken] == [
        ("Common Dreams", "none_ok", 1)
    ]
    cited = _run_search(client, settings, "seednews-search-most-cited")
    assert [(d["provider"]["name"], d["cited_by_count"]) for d in cited] == [("Common Dreams", 1)]
    quarantined = _run_search(client, settings, "seednews-search-quarantined-files")
    assert sorted(d["path"] for d in quarantined) == ["100_invalid_yaml.txt", "101_bad_date.txt"]
    pending = _run_search(client, settings, "seednews-search-pending-dead-letters")
    assert [d["seed_path"] for d in pending] == ["102_refused.txt"]
    for search in _searches():  # every column is in the hits (nothing shows up empty)
        for doc in _run_search(client, settings, search["id"]):
            for column in search["attributes"]["columns"]:
                value: Any = doc
                for part in column.split("."):
                    value = [v.get(part) for v in value] if isinstance(value, list) else value.get(part)
                assert value not in (None, [], [None]), (search["id"], column)


def test_text_quality_panel_and_damaged_text_search(settings, client, indexed, tmp_path):
    """Both sample articles had mojibake that was repaired (one in its excerpt, one in a related
    article's excerpt); an article whose text is still broken after repair is found by the saved search."""
    from devtools.seedfile import parse_seed
    from pipeline.sources.folder import discover
    from pipeline.stages.normalize import normalize

    assert indexed.text_quality == {"repaired": 3}  # the two articles and the refused copy (dead letter)
    assert "  text quality: repaired 3" in indexed.render().splitlines()
    assert _run_vis(client, settings, "seednews-vis-text-quality") == {
        ("repaired", "excerpt"): 1,
        ("repaired", "related.excerpt"): 1,
    }
    assert _run_search(client, settings, "seednews-search-damaged-text") == []
    (tmp_path / "damaged.txt").write_text(
        '---\ntitle: "Caf\ufffd au lait"\npublishedDateTime: 2021-10-07\nwebUrl: "https://example.com/d"\n'
        'provider: {name: "Example"}\n---\n',
        encoding="utf-8",
    )
    seeds, _ = discover(tmp_path)
    doc = normalize(parse_seed(seeds[0]))
    client.index(index=_real_index(settings, "seednews-ip-articles"), id=doc.id, body=doc.source, refresh=True)
    assert _run_vis(client, settings, "seednews-vis-text-quality")[("damaged", "title")] == 1
    (found,) = _run_search(client, settings, "seednews-search-damaged-text")
    assert (found["title"], found["text_quality_fields"], found["seed"]["path"]) == (
        "Caf\ufffd au lait",
        ["title"],
        "damaged.txt",
    )
    search = _by_id()["seednews-search-damaged-text"]
    for column in search["attributes"]["columns"]:  # every column shows something
        value: Any = found
        for part in column.split("."):
            value = value.get(part)
        assert value not in (None, []), column


# ============================================================================ the import command
class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request; answers with the server's ``reply`` (status, JSON body)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append({"method": self.command, "path": self.path, "headers": self.headers, "body": body})
        status, payload = self.server.reply
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def dashboards_server():
    with _server(_Recorder) as (srv, url):
        srv.requests = []
        srv.reply = (200, {"success": True, "successCount": len(EXPECTED_OBJECTS)})
        yield srv, url


@pytest.fixture
def clean_env(monkeypatch):
    for name in (
        "DASHBOARDS_URL",
        "DASHBOARDS_USER",
        "DASHBOARDS_PASSWORD",
        "DASHBOARDS_VERIFY_CERTS",
        "DASHBOARDS_TIMEOUT",
        "DASHBOARDS_TENANT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _multipart_parts(request: dict[str, Any]) -> list:
    ctype = request["headers"]["Content-Type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + request["body"])
    return list(msg.iter_parts())


def test_import_sends_exactly_the_right_request(dashboards_server, clean_env, capsys):
    srv, url = dashboards_server
    clean_env.setenv("DASHBOARDS_USER", "analyst")
    clean_env.setenv("DASHBOARDS_PASSWORD", "s3cr3t-pw")
    assert cli.main(["dashboards", "import", "--url", url + "/"]) == 0
    (req,) = srv.requests
    assert (req["method"], req["path"]) == ("POST", "/api/saved_objects/_import?overwrite=true")
    assert req["headers"]["osd-xsrf"] == "true"
    assert req["headers"]["Authorization"] == "Basic " + base64.b64encode(b"analyst:s3cr3t-pw").decode()
    (part,) = _multipart_parts(req)
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "seednews.ndjson"
    assert part.get_payload(decode=True) == NDJSON.read_bytes()
    out = capsys.readouterr()
    assert f"imported {len(EXPECTED_OBJECTS)} saved objects" in out.out
    assert "s3cr3t-pw" not in out.out + out.err


def test_import_without_credentials_sends_no_auth_and_uses_the_env_url(dashboards_server, clean_env, tmp_path):
    srv, url = dashboards_server
    clean_env.setenv("DASHBOARDS_URL", url)
    other = tmp_path / "other.ndjson"
    other.write_text('{"type":"index-pattern","id":"x","attributes":{"title":"x"},"references":[]}\n', encoding="utf-8")
    assert cli.main(["dashboards", "import", "--file", str(other)]) == 0
    (req,) = srv.requests
    assert "Authorization" not in req["headers"]
    (part,) = _multipart_parts(req)
    assert (part.get_filename(), part.get_payload(decode=True)) == ("other.ndjson", other.read_bytes())


def test_import_is_idempotent_same_request_twice(dashboards_server, clean_env):
    srv, url = dashboards_server
    assert cli.main(["dashboards", "import", "--url", url]) == 0
    assert cli.main(["dashboards", "import", "--url", url]) == 0
    first, second = srv.requests
    assert first["path"] == second["path"]
    assert _multipart_parts(first)[0].get_payload(decode=True) == _multipart_parts(second)[0].get_payload(decode=True)


def test_refused_objects_are_named_and_exit_non_zero(dashboards_server, clean_env, capsys):
    srv, url = dashboards_server
    srv.reply = (
        200,
        {
            "success": False,
            "successCount": 14,
            "errors": [
                {
                    "id": "seednews-vis-quarantine-reasons",
                    "type": "visualization",
                    "meta": {"title": "[seednews] Quarantine reasons"},
                    "error": {
                        "type": "missing_references",
                        "references": [{"type": "index-pattern", "id": "seednews-ip-ledger"}],
                    },
                },
                {
                    "id": "seednews-dashboard-operators",
                    "type": "dashboard",
                    "title": "[seednews] Pipeline health (operators)",
                    "error": {"type": "unknown", "message": "mapper_parsing_exception", "statusCode": 400},
                },
            ],
        },
    )
    assert cli.main(["dashboards", "import", "--url", url]) == 1
    err = capsys.readouterr().err
    assert "2 saved object(s) not imported (14 imported)" in err
    assert (
        "visualization seednews-vis-quarantine-reasons ('[seednews] Quarantine reasons'): "
        "missing references: index-pattern seednews-ip-ledger"
    ) in err
    assert (
        "dashboard seednews-dashboard-operators ('[seednews] Pipeline health (operators)'): mapper_parsing_exception (HTTP 400)"
        in err
    )


def test_http_errors_and_unreachable_dashboards_are_readable(dashboards_server, clean_env, capsys):
    srv, url = dashboards_server
    srv.reply = (401, {"statusCode": 401, "error": "Unauthorized", "message": "Authentication required"})
    assert cli.main(["dashboards", "import", "--url", url]) == 2
    assert "import failed: HTTP 401: Authentication required" in capsys.readouterr().err
    srv.reply = (415, {"statusCode": 415, "error": "Unsupported Media Type", "message": "Unsupported Media Type"})
    assert cli.main(["dashboards", "import", "--url", url]) == 2
    assert "HTTP 415" in capsys.readouterr().err
    with _server(_Recorder) as (_gone, gone_url):
        pass  # closed: nothing listens there any more
    assert cli.main(["dashboards", "import", "--url", gone_url]) == 2
    assert f"cannot reach OpenSearch Dashboards at {gone_url}/api/saved_objects/_import" in capsys.readouterr().err


def test_config_from_env_parses_booleans_timeout_and_keeps_secrets_out_of_repr():
    cfg = dash.DashboardsConfig.from_env({})
    assert (cfg.url, cfg.verify_certs, cfg.timeout, cfg.username) == ("http://127.0.0.1:5601", True, 30.0, None)
    for raw, expected in (
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        (" off ", False),
        ("true", True),
        ("1", True),
        ("Yes", True),
        ("", True),
    ):
        assert dash.DashboardsConfig.from_env({"DASHBOARDS_VERIFY_CERTS": raw}).verify_certs is expected, raw
    with pytest.raises(dash.DashboardsError, match="DASHBOARDS_VERIFY_CERTS must be true or false"):
        dash.DashboardsConfig.from_env({"DASHBOARDS_VERIFY_CERTS": "maybe"})
    with pytest.raises(dash.DashboardsError, match="DASHBOARDS_TIMEOUT"):
        dash.DashboardsConfig.from_env({"DASHBOARDS_TIMEOUT": "soon"})
    with pytest.raises(dash.DashboardsError, match="http"):
        dash.DashboardsConfig.from_env({"DASHBOARDS_URL": "dashboards:5601"})
    cfg = dash.DashboardsConfig.from_env(
        {"DASHBOARDS_URL": "https://u:pw-in-url@dash.example:5601/osd/", "DASHBOARDS_TIMEOUT": "5"}
    )
    assert (cfg.url, cfg.username, cfg.password, cfg.timeout) == (
        "https://dash.example:5601/osd",
        "u",
        "pw-in-url",
        5.0,
    )
    assert "pw-in-url" not in repr(cfg)
    req = dash.build_import_request(cfg, b"{}\n")
    assert req.url == "https://dash.example:5601/osd/api/saved_objects/_import" and req.auth == ("u", "pw-in-url")
    assert "pw-in-url" not in repr(req)


def test_pure_request_and_injectable_session():
    cfg = dash.DashboardsConfig.from_env(
        {"DASHBOARDS_URL": "https://dashboards:5601", "DASHBOARDS_VERIFY_CERTS": "false"}
    )
    req = dash.build_import_request(cfg, b"line\n", "seednews.ndjson")
    assert (req.method, req.url, req.params) == (
        "POST",
        "https://dashboards:5601/api/saved_objects/_import",
        {"overwrite": "true"},
    )
    assert req.headers["osd-xsrf"] == "true" and req.auth is None and req.verify is False and req.timeout == 30.0
    assert req.files == {"file": ("seednews.ndjson", b"line\n", "application/ndjson")}
    with pytest.raises(dash.DashboardsError, match=r"\*\.ndjson"):
        dash.build_import_request(cfg, b"", "seednews.json")

    class FakeResponse:
        status_code = 200
        content = b'{"success": true, "successCount": 1}'

    class FakeSession:
        calls: list = []

        def request(self, method, url, **kwargs):
            self.calls.append((method, url, kwargs))
            return FakeResponse()

    session = FakeSession()
    result = dash.send_import(req, session=session)
    assert (result.ok, result.success_count) == (True, 1)
    ((method, url, kwargs),) = session.calls
    assert (method, url, kwargs["verify"], kwargs["timeout"], kwargs["allow_redirects"]) == (
        "POST",
        req.url,
        False,
        30.0,
        False,
    )


def test_response_parsing_edge_cases():
    assert not dash.parse_import_response(200, b'{"success": false, "successCount": 0}').ok
    bad = dash.parse_import_response(502, b"<html>Bad Gateway</html>")
    assert (bad.ok, bad.status) == (False, 502) and "not a JSON answer" in bad.message
    conflict = dash.parse_import_response(
        200,
        json.dumps(
            {
                "success": False,
                "successCount": 0,
                "errors": [{"id": "a", "type": "search", "error": {"type": "conflict"}}],
            }
        ),
    )
    assert conflict.errors == ["search a: conflict"]


def _readme_dql() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## For analysts: OpenSearch Dashboards", 1)[1].split("\n## ", 1)[0]
    examples = section.split("**Example DQL queries**", 1)[1].split("\n\n", 2)[1]
    return re.findall(r"`([^`]+)`", examples.replace("\n  ", " "))


def test_readme_dql_examples_use_real_fields_and_answer_their_question(settings, client, indexed):
    topic_provider, broken, unpublished, citing = _readme_dql()
    fields = _fields_of(objs.IP_ARTICLES)
    for dql in (topic_provider, broken, unpublished, citing):
        _, used = DQL.translate(dql)
        assert used and all(f in fields and _searchable(fields[f]) for f in used), dql

    def names(dql: str) -> list[str]:
        query, _ = DQL.translate(dql)
        hits = client.search(index=settings.alias, body={"query": query})["hits"]["hits"]
        return sorted(h["_source"]["provider"]["name"] for h in hits)

    assert names(topic_provider) == []  # the samples were published in October 2021, not this week
    assert names(topic_provider.replace("now-7d", "2021-10-04")) == ["TechCrunch"]
    assert names(broken) == ["Common Dreams"]
    assert names(unpublished) == ["Common Dreams"]
    assert names(citing) == ["TechCrunch"]  # the TechCrunch sample lists the Common Dreams one as related
    assert names('topics.folded:"computer vision"') == ["Common Dreams"]  # the README's case-insensitive hint
