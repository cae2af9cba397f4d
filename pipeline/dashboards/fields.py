"""The field list an index pattern saves, made from the mapping the pipeline installs for its indices.

An index pattern whose saved ``fields`` attribute lists every field knows them before the first document:
on a clean install (no index yet) and for the dead-letter index (created by the first refusal) the panels
find their fields, where a pattern without a list would ask the cluster, get nothing, and fail with "Could
not locate that index-pattern-field". Dashboards takes a saved list as it is when every entry carries
``searchable``, ``aggregatable`` and ``readFromDocValues`` (otherwise it asks the cluster again); the
refresh button of the index pattern page replaces it with what the cluster says. Searching an index that
does not exist yet answers "No results found", not an error (Dashboards searches with
``ignore_unavailable``).

The entries say what OpenSearch's ``_field_caps`` says for the same mapping (the Dashboards field type,
the OpenSearch type, searchable, aggregatable); ``tests/test_saved_objects_contract.py`` compares them on a
real node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FieldMapping = Mapping[str, Any]
FieldSpec = dict[str, Any]

NUMBER_TYPES = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
)
AGGREGATABLE_TYPES = NUMBER_TYPES | {"keyword", "boolean", "date", "date_nanos", "ip"}
"""OpenSearch types that aggregate and sort from doc values (``text`` does not)."""

DASHBOARDS_TYPES: dict[str, str] = {
    **dict.fromkeys(NUMBER_TYPES, "number"),
    "keyword": "string",
    "text": "string",
    "boolean": "boolean",
    "date": "date",
    "date_nanos": "date",
    "ip": "ip",
}
"""OpenSearch type -> the Dashboards field type (the ``type`` of a saved field)."""

META_FIELDS: tuple[FieldSpec, ...] = (
    {"name": "_id", "type": "string", "esTypes": ["_id"], "searchable": True, "aggregatable": True},
    {"name": "_index", "type": "string", "esTypes": ["_index"], "searchable": True, "aggregatable": True},
    {"name": "_score", "type": "number", "searchable": False, "aggregatable": False},
    {"name": "_source", "type": "_source", "esTypes": ["_source"], "searchable": False, "aggregatable": False},
)
"""The metadata fields Dashboards adds to every index pattern (its ``metaFields`` setting)."""


def mapping_fields(mapping: FieldMapping) -> dict[str, FieldMapping]:
    """``{dotted name: its mapping}`` of every leaf field of an index mapping (``{"properties": ...}``),
    multi-fields included (``reason.keyword``); objects (``enabled: false`` blobs included) are not fields."""
    out: dict[str, FieldMapping] = {}

    def walk(properties: FieldMapping, prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            if "properties" in spec:
                walk(spec["properties"], path + ".")
            elif spec.get("type", "object") not in ("object", "nested"):
                out[path] = spec
                for sub, sub_spec in spec.get("fields", {}).items():
                    out[f"{path}.{sub}"] = sub_spec

    walk(mapping.get("properties", {}), "")
    return out


def searchable(spec: FieldMapping) -> bool:
    """The field can be queried: it is indexed."""
    return spec.get("index", True) is not False


def aggregatable(spec: FieldMapping) -> bool:
    """The field can be aggregated and sorted on: an aggregatable type with doc values."""
    return spec["type"] in AGGREGATABLE_TYPES and spec.get("doc_values", True) is not False


def field_spec(name: str, spec: FieldMapping, parent: str | None = None) -> FieldSpec:
    """One saved field of an index pattern; ``parent`` names the field a multi-field belongs to."""
    es_type = spec["type"]
    can_aggregate = aggregatable(spec)
    out: FieldSpec = {
        "name": name,
        "type": DASHBOARDS_TYPES.get(es_type, "unknown"),
        "esTypes": [es_type],
        "count": 0,
        "scripted": False,
        "searchable": searchable(spec),
        "aggregatable": can_aggregate,
        "readFromDocValues": can_aggregate and es_type != "text",
    }
    if parent is not None:
        out["subType"] = {"multi": {"parent": parent}}
    return out


def _with_saved_flags(meta: FieldSpec) -> FieldSpec:
    return {"count": 0, "scripted": False, "readFromDocValues": False, **meta}


def index_pattern_fields(mapping: FieldMapping) -> list[FieldSpec]:
    """The saved ``fields`` of an index pattern over indices with ``mapping``: the metadata fields, then
    every mapped field by name."""
    leaves = mapping_fields(mapping)
    fields = [_with_saved_flags(meta) for meta in META_FIELDS]
    for name in sorted(leaves):
        parent, _, _sub = name.rpartition(".")
        is_multi = parent in leaves and _sub in leaves[parent].get("fields", {})
        fields.append(field_spec(name, leaves[name], parent if is_multi else None))
    return fields
