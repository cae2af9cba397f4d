"""The shapes of OpenSearch Dashboards saved objects: an index pattern, a visualization (table, pie,
histogram; terms and date-histogram buckets counting documents), a saved search and a dashboard, built from
a few values each, in the current saved-object shape.

A visualization or search names its index pattern through
``kibanaSavedObjectMeta.searchSourceJSON.indexRefName`` + ``references`` and a dashboard its panels through
``panelRefName`` + ``references``, so ids are stable and an import with ``overwrite=true`` replaces them in
place. ``migrationVersion`` is left out on purpose: Dashboards then runs its migrations, which leave objects
already in this shape as they are. Embedded JSON strings are compact and key-sorted, so the generated file is
byte-stable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline.dashboards.fields import FieldSpec

INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


@dataclass(frozen=True)
class TimeRange:
    """A saved time range in Dashboards' date math (``now-7d``, ``now``) or ISO dates."""

    start: str
    end: str


def compact_json(value: Any) -> str:
    """Compact, key-sorted JSON: the embedded strings are byte-stable between generator runs."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def search_source(query: str = "", *, index: bool = True, **extra: Any) -> dict[str, str]:
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": [], **extra}
    if index:
        source["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": compact_json(source)}


def terms_agg(
    agg_id: str, schema: str, field: str, label: str, size: int = 10, missing: bool = False
) -> dict[str, Any]:
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


COUNT_METRIC = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def table_params() -> dict[str, Any]:
    return {
        "perPage": 10,
        "showPartialRows": False,
        "showMetricsAtAllLevels": False,
        "showTotal": True,
        "totalFunc": "sum",
        "percentageCol": "",
        "sort": {"columnIndex": None, "direction": None},
    }


def pie_params() -> dict[str, Any]:
    return {
        "type": "pie",
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "isDonut": True,
        "labels": {"show": True, "values": True, "last_level": True, "truncate": 100},
    }


def histogram_params(x_title: str) -> dict[str, Any]:
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


def visualization(
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
            "visState": compact_json(state),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": search_source(query),
        },
        "references": [{"name": INDEX_REF, "type": "index-pattern", "id": index_pattern}],
    }


def saved_search(
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
            "kibanaSavedObjectMeta": search_source(query, highlightAll=True, version=True),
        },
        "references": [{"name": INDEX_REF, "type": "index-pattern", "id": index_pattern}],
    }


def dashboard(
    did: str, title: str, description: str, panels: list[tuple[str, str, int, int, int, int]], time: TimeRange
) -> dict[str, Any]:
    """``panels``: (saved-object type, id, x, y, w, h) on the 48-column grid; ``time``: the range the
    dashboard opens on (``timeRestore``: it replaces the time picker's range when the dashboard opens)."""
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
            "panelsJSON": compact_json(panels_json),
            "optionsJSON": compact_json({"hidePanelTitles": False, "useMargins": True}),
            "version": 1,
            "timeRestore": True,
            "timeFrom": time.start,
            "timeTo": time.end,
            "refreshInterval": {"pause": True, "value": 0},
            "kibanaSavedObjectMeta": search_source("", index=False),
        },
        "references": references,
    }


def index_pattern(
    ip_id: str, title: str, time_field: str, field_formats: dict[str, Any], fields: list[FieldSpec]
) -> dict[str, Any]:
    """An index pattern over ``title`` whose time filter applies to ``time_field``, with its saved field
    list (``pipeline.dashboards.fields``) and per-field formats (``fieldFormatMap``)."""
    return {
        "id": ip_id,
        "type": "index-pattern",
        "attributes": {
            "title": title,
            "timeFieldName": time_field,
            "fields": compact_json(fields),
            "fieldFormatMap": compact_json(field_formats),
        },
        "references": [],
    }
