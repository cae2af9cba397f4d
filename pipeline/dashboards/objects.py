"""OpenSearch Dashboards saved objects for seednews, as code: the single source of
``dashboards/seednews.ndjson`` (the file ``python -m pipeline dashboards import`` sends).

(Over 400 lines on purpose: it is mostly declarations — every visualization, search and dashboard as data,
side by side, so one diff shows what an analyst will see change.)

Regenerate after editing this module (a test fails while the committed file differs)::

    .venv/bin/python -m pipeline.dashboards.objects            # rewrites dashboards/seednews.ndjson
    .venv/bin/python -m pipeline.dashboards.objects --check    # exit 1 if the file is stale

Objects use the current saved-object shape: a visualization or search names its index pattern through
``kibanaSavedObjectMeta.searchSourceJSON.indexRefName`` + ``references`` and a dashboard its panels
through ``panelRefName`` + ``references``, so ids are stable and an import with ``overwrite=true``
replaces them in place. ``migrationVersion`` is left out on purpose: Dashboards then runs its migrations,
which leave objects already in this shape as they are. Index patterns carry no ``fields`` list:
Dashboards reads the fields from the index the first time the pattern is used (it can never go stale
against the mapping).

Field names come from ``mappings/*.template.json``; ``tests/test_dashboards.py`` checks every field used
here against them and runs each visualization's query + aggregation against a real node.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

NDJSON_PATH = Path(__file__).resolve().parent.parent.parent / "dashboards" / "seednews.ndjson"  # the committed file


def shipped_ndjson():
    """The saved objects file, from the checkout or from the installed wheel."""
    from pipeline.resources import data_dir

    return data_dir("pipeline.savedobjects", "dashboards") / "seednews.ndjson"


# ------------------------------------------------------------------ index patterns
ARTICLES = "seednews-articles"
LEDGER = "seednews-articles-ledger"
DEADLETTER = "seednews-articles-deadletter"

IP_ARTICLES = "seednews-ip-articles"
IP_LEDGER = "seednews-ip-ledger"
IP_DEADLETTER = "seednews-ip-deadletter"

#: index pattern id -> (title, time field, mapping file in mappings/)
INDEX_PATTERNS: dict[str, tuple[str, str, str]] = {
    IP_ARTICLES: (ARTICLES, "published_at", "articles.template.json"),
    IP_LEDGER: (LEDGER, "updated_at", "ledger.template.json"),
    IP_DEADLETTER: (DEADLETTER, "failed_at", "deadletter.template.json"),
}

_LINK = {"id": "url", "params": {"type": "a", "urlTemplate": None, "labelTemplate": None}}

#: Url (link) format per index pattern. Only absolute http(s) URL fields: ``provider.images.url`` holds
#: site-relative paths (``/assets/...``) that the Url format would turn into links into Dashboards itself.
FIELD_FORMATS: dict[str, dict[str, Any]] = {
    IP_ARTICLES: {"url": _LINK, "images.url": _LINK, "related.url": _LINK, "related.images.url": _LINK},
    IP_LEDGER: {},
    IP_DEADLETTER: {},
}

INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"

# ------------------------------------------------------------------ saved-object ids
VIS_TOPICS = "seednews-vis-articles-per-topic"
VIS_PROVIDERS = "seednews-vis-articles-per-provider"
VIS_OVER_TIME = "seednews-vis-articles-over-time"
VIS_IMAGE_HEALTH = "seednews-vis-image-health"
VIS_TEXT_QUALITY = "seednews-vis-text-quality"
VIS_LEDGER_STATES = "seednews-vis-ledger-states"
VIS_QUARANTINE = "seednews-vis-quarantine-reasons"
VIS_DEADLETTERS = "seednews-vis-pending-dead-letters"

SEARCH_UNPUBLISHED = "seednews-search-unpublished-articles"
SEARCH_BROKEN_IMAGES = "seednews-search-broken-images"
SEARCH_DAMAGED_TEXT = "seednews-search-damaged-text"
SEARCH_MOST_CITED = "seednews-search-most-cited"
SEARCH_QUARANTINED = "seednews-search-quarantined-files"
SEARCH_DEADLETTERS = "seednews-search-pending-dead-letters"

DASH_ANALYSTS = "seednews-dashboard-analysts"
DASH_OPERATORS = "seednews-dashboard-operators"

# DQL (language "kuery") of the saved queries; the README's examples use the same field names.
Q_QUARANTINED = "state:quarantined"
Q_PENDING = "pending:true"
Q_UNPUBLISHED = "published:false"
# image_health is no_images / unchecked / all_ok / some_broken / none_ok (pipeline/stages/images/annotate.py
# annotate_document); images_broken > 0 exactly when it is some_broken or none_ok.
Q_BROKEN_IMAGES = "image_health:(some_broken or none_ok) or images_broken > 0"
# text_quality is clean / repaired / damaged (pipeline/stages/facets.py): damaged = still broken after repair
Q_DAMAGED_TEXT = "text_quality:damaged"
# cited_by_count: how many indexed articles list this one among their related articles (pipeline/run/linking.py)
Q_CITED = "cited_by_count > 0"


def _json(value: Any) -> str:
    """Compact, key-sorted JSON: the embedded strings are byte-stable between generator runs."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _search_source(query: str = "", *, index: bool = True, **extra: Any) -> dict[str, str]:
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": [], **extra}
    if index:
        source["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": _json(source)}


def _terms(agg_id: str, schema: str, field: str, label: str, size: int = 10, missing: bool = False) -> dict[str, Any]:
    return {
        "id": agg_id,
        "enabled": True,
        "type": "terms",
        "schema": schema,
        "params": {
            "field": field,
            "size": size,
            "order": "desc",
            "orderBy": "1",
            "otherBucket": False,
            "otherBucketLabel": "Other",
            "missingBucket": missing,
            "missingBucketLabel": "Missing",
            "customLabel": label,
        },
    }


_COUNT = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def _table_params() -> dict[str, Any]:
    return {
        "perPage": 10,
        "showPartialRows": False,
        "showMetricsAtAllLevels": False,
        "showTotal": True,
        "totalFunc": "sum",
        "percentageCol": "",
        "sort": {"columnIndex": None, "direction": None},
    }


def _pie_params() -> dict[str, Any]:
    return {
        "type": "pie",
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "isDonut": True,
        "labels": {"show": True, "values": True, "last_level": True, "truncate": 100},
    }


def _histogram_params(x_title: str) -> dict[str, Any]:
    return {
        "type": "histogram",
        "addTooltip": True,
        "addLegend": False,
        "legendPosition": "right",
        "addTimeMarker": False,
        "times": [],
        "grid": {"categoryLines": False},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": "bottom",
                "show": True,
                "style": {},
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": True, "truncate": 100},
                "title": {"text": x_title},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "style": {},
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": "Articles"},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": "histogram",
                "mode": "stacked",
                "data": {"label": "Articles", "id": "1"},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "showCircles": True,
            }
        ],
    }


def _visualization(
    vid: str,
    title: str,
    description: str,
    index_pattern: str,
    vis_type: str,
    params: dict[str, Any],
    aggs: list[dict[str, Any]],
    query: str = "",
) -> dict[str, Any]:
    state = {"title": title, "type": vis_type, "params": params, "aggs": aggs}
    return {
        "id": vid,
        "type": "visualization",
        "attributes": {
            "title": title,
            "description": description,
            "visState": _json(state),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": _search_source(query),
        },
        "references": [{"name": INDEX_REF, "type": "index-pattern", "id": index_pattern}],
    }


def _search(
    sid: str, title: str, description: str, index_pattern: str, query: str, columns: list[str], sort_field: str
) -> dict[str, Any]:
    return {
        "id": sid,
        "type": "search",
        "attributes": {
            "title": title,
            "description": description,
            "hits": 0,
            "columns": columns,
            "sort": [[sort_field, "desc"]],
            "version": 1,
            "kibanaSavedObjectMeta": _search_source(query, highlightAll=True, version=True),
        },
        "references": [{"name": INDEX_REF, "type": "index-pattern", "id": index_pattern}],
    }


def _dashboard(
    did: str, title: str, description: str, panels: list[tuple[str, str, int, int, int, int]], time_from: str
) -> dict[str, Any]:
    """``panels``: (saved-object type, id, x, y, w, h) on the 48-column grid."""
    panels_json, references = [], []
    for i, (otype, oid, x, y, w, h) in enumerate(panels, start=1):
        ref = f"panel_{i - 1}"
        panels_json.append(
            {
                "panelIndex": str(i),
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i)},
                "embeddableConfig": {},
                "version": "7.10.0",
                "panelRefName": ref,
            }
        )
        references.append({"name": ref, "type": otype, "id": oid})
    return {
        "id": did,
        "type": "dashboard",
        "attributes": {
            "title": title,
            "description": description,
            "hits": 0,
            "panelsJSON": _json(panels_json),
            "optionsJSON": _json({"hidePanelTitles": False, "useMargins": True}),
            "version": 1,
            "timeRestore": True,
            "timeFrom": time_from,
            "timeTo": "now",
            "refreshInterval": {"pause": True, "value": 0},
            "kibanaSavedObjectMeta": _search_source("", index=False),
        },
        "references": references,
    }


def saved_objects() -> list[dict[str, Any]]:
    """Every saved object, in an order where each object comes after those it references."""
    objects: list[dict[str, Any]] = []
    for ip_id, (title, time_field, _mapping) in INDEX_PATTERNS.items():
        objects.append(
            {
                "id": ip_id,
                "type": "index-pattern",
                "attributes": {
                    "title": title,
                    "timeFieldName": time_field,
                    "fieldFormatMap": _json(FIELD_FORMATS[ip_id]),
                },
                "references": [],
            }
        )

    objects += [
        _visualization(
            VIS_TOPICS,
            "[seednews] Articles per topic",
            "Articles per topic, with the canonical display form of each topic (AI, Computer Vision...). "
            "An article with several topics counts once under each.",
            IP_ARTICLES,
            "table",
            _table_params(),
            [_COUNT, _terms("2", "bucket", "topics", "Topic", size=50)],
        ),
        _visualization(
            VIS_PROVIDERS,
            "[seednews] Articles per provider",
            "Articles per publisher (provider.name).",
            IP_ARTICLES,
            "table",
            _table_params(),
            [_COUNT, _terms("2", "bucket", "provider.name", "Provider", size=50)],
        ),
        _visualization(
            VIS_OVER_TIME,
            "[seednews] Articles over time",
            "Articles per day of publication (published_at).",
            IP_ARTICLES,
            "histogram",
            _histogram_params("Published"),
            [
                _COUNT,
                {
                    "id": "2",
                    "enabled": True,
                    "type": "date_histogram",
                    "schema": "segment",
                    "params": {
                        "field": "published_at",
                        "interval": "d",
                        "min_doc_count": 1,
                        "extended_bounds": {},
                        "drop_partials": False,
                        "useNormalizedOpenSearchInterval": True,
                        "scaleMetricValues": False,
                        "customLabel": "Published",
                    },
                },
            ],
        ),
        _visualization(
            VIS_IMAGE_HEALTH,
            "[seednews] Image health",
            "Articles by image_health: all_ok, some_broken, none_ok, unchecked (images not checked in that "
            "run), no_images.",
            IP_ARTICLES,
            "pie",
            _pie_params(),
            [_COUNT, _terms("2", "segment", "image_health", "Image health")],
        ),
        _visualization(
            VIS_TEXT_QUALITY,
            "[seednews] Text quality",
            "Articles by text_quality: clean, repaired (mojibake or entities undone), damaged (still broken "
            "after repair: U+FFFD, C1 controls, mojibake ftfy cannot undo; fix it at the source), split by "
            "the fields concerned (text_quality_fields).",
            IP_ARTICLES,
            "table",
            _table_params(),
            [
                _COUNT,
                _terms("2", "bucket", "text_quality", "Text quality"),
                _terms("3", "bucket", "text_quality_fields", "Fields", size=20, missing=True),
            ],
        ),
        _visualization(
            VIS_LEDGER_STATES,
            "[seednews] Seed files by ledger state",
            "What became of each seed file: indexed, quarantined, duplicate, failed, dead_letter...",
            IP_LEDGER,
            "pie",
            _pie_params(),
            [_COUNT, _terms("2", "segment", "state", "State", size=20)],
        ),
        _visualization(
            VIS_QUARANTINE,
            "[seednews] Quarantine reasons",
            "Quarantined seed files by stage and reason (the ledger; fix the file and it is picked up again).",
            IP_LEDGER,
            "table",
            _table_params(),
            [
                _COUNT,
                _terms("2", "bucket", "stage", "Stage", size=20),
                _terms("3", "bucket", "reason.keyword", "Reason", size=50),
            ],
            query=Q_QUARANTINED,
        ),
        _visualization(
            VIS_DEADLETTERS,
            "[seednews] Pending dead letters",
            "Documents OpenSearch refused for good and not yet replayed, by reason and HTTP status.",
            IP_DEADLETTER,
            "table",
            _table_params(),
            [
                _COUNT,
                _terms("2", "bucket", "reason.keyword", "Reason", size=50),
                _terms("3", "bucket", "status", "HTTP status", size=10),
            ],
            query=Q_PENDING,
        ),
        _search(
            SEARCH_UNPUBLISHED,
            "[seednews] Unpublished articles",
            "Articles whose seed says published: false.",
            IP_ARTICLES,
            Q_UNPUBLISHED,
            ["title", "provider.name", "topics", "url"],
            "published_at",
        ),
        _search(
            SEARCH_BROKEN_IMAGES,
            "[seednews] Articles with broken images",
            "Articles with at least one checked image that is not ok (broken, not_image, timeout, "
            "unreachable, blocked, invalid).",
            IP_ARTICLES,
            Q_BROKEN_IMAGES,
            ["title", "provider.name", "image_health", "images_broken", "images_checked", "images.url"],
            "published_at",
        ),
        _search(
            SEARCH_DAMAGED_TEXT,
            "[seednews] Articles with damaged text",
            "Articles whose text still looks broken after repair (text_quality: damaged), with the fields "
            "concerned and the seed file to fix.",
            IP_ARTICLES,
            Q_DAMAGED_TEXT,
            ["title", "provider.name", "text_quality_fields", "seed.path"],
            "published_at",
        ),
        _search(
            SEARCH_MOST_CITED,
            "[seednews] Most cited articles",
            "Articles other indexed articles list among their related articles, the most cited first "
            "(cited_by_count; cited_by holds the ids of the citing articles: related.id:<id> finds them).",
            IP_ARTICLES,
            Q_CITED,
            ["title", "cited_by_count", "provider.name", "url"],
            "cited_by_count",
        ),
        _search(
            SEARCH_QUARANTINED,
            "[seednews] Quarantined seed files",
            "Seed files that could not become a document, with the stage and the reason.",
            IP_LEDGER,
            Q_QUARANTINED,
            ["root", "path", "stage", "reason", "run_id"],
            "updated_at",
        ),
        _search(
            SEARCH_DEADLETTERS,
            "[seednews] Pending dead letters",
            "Refused documents waiting for a fix and a replay (--replay-dead-letters).",
            IP_DEADLETTER,
            Q_PENDING,
            ["seed_path", "status", "reason", "target"],
            "failed_at",
        ),
    ]

    objects.append(
        _dashboard(
            DASH_ANALYSTS,
            "[seednews] Articles (analysts)",
            "What is in the articles index: topics, providers, publication over time, unpublished articles, "
            "text quality, most cited articles. "
            "Pick the time range of the publications you care about (the time field is published_at).",
            [
                ("visualization", VIS_OVER_TIME, 0, 0, 48, 12),
                ("visualization", VIS_TOPICS, 0, 12, 24, 15),
                ("visualization", VIS_PROVIDERS, 24, 12, 24, 15),
                ("visualization", VIS_IMAGE_HEALTH, 0, 27, 16, 15),
                ("search", SEARCH_UNPUBLISHED, 16, 27, 32, 15),
                ("visualization", VIS_TEXT_QUALITY, 0, 42, 16, 15),
                ("search", SEARCH_DAMAGED_TEXT, 16, 42, 32, 15),
                ("search", SEARCH_MOST_CITED, 0, 57, 48, 15),
            ],
            time_from="now-1y",
        )
    )
    objects.append(
        _dashboard(
            DASH_OPERATORS,
            "[seednews] Pipeline health (operators)",
            "Ledger states, quarantine reasons, pending dead letters and image health. Ledger panels use "
            "updated_at, dead letters failed_at, image health published_at.",
            [
                ("visualization", VIS_LEDGER_STATES, 0, 0, 16, 15),
                ("visualization", VIS_QUARANTINE, 16, 0, 32, 15),
                ("visualization", VIS_DEADLETTERS, 0, 15, 24, 15),
                ("visualization", VIS_IMAGE_HEALTH, 24, 15, 24, 15),
                ("search", SEARCH_QUARANTINED, 0, 30, 48, 15),
                ("search", SEARCH_DEADLETTERS, 0, 45, 24, 15),
                ("search", SEARCH_BROKEN_IMAGES, 24, 45, 24, 15),
            ],
            time_from="now-7d",
        )
    )
    return objects


def render() -> str:
    """The NDJSON text: one saved object per line, keys sorted, newline-terminated."""
    return "".join(_json(o) + "\n" for o in saved_objects())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.dashboards.objects", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    parser.add_argument("--output", type=Path, default=NDJSON_PATH)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is stale: run python -m pipeline.dashboards.objects", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} saved objects to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
