"""OpenSearch Dashboards saved objects for seednews, as code: the single source of
``dashboards/seednews.ndjson`` (the file ``python -m pipeline dashboards import`` sends). Every index
pattern, visualization, search and dashboard is declared here as data, side by side, so one diff shows what
an analyst will see change; their shapes are ``pipeline.dashboards.shapes``.

Regenerate after editing this module or a mapping (a test fails while the committed file differs)::

    .venv/bin/python -m pipeline.dashboards.objects            # rewrites dashboards/seednews.ndjson
    .venv/bin/python -m pipeline.dashboards.objects --check    # exit 1 if the file is stale

Index patterns save their field list, made from the mapping the pipeline installs for their indices
(``pipeline.dashboards.fields``): every panel finds its fields on a clean install and before the first
dead letter. Both dashboards open on :data:`EVERY_DATE` (why: see there).

``tests/test_saved_objects_contract.py`` checks that every field an object names exists in the installed
mappings and aggregates where it is aggregated; ``tests/test_dashboards.py`` runs each visualization's
query + aggregation against a real node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipeline.dashboards.fields import index_pattern_fields
from pipeline.dashboards.shapes import (
    COUNT_METRIC,
    TimeRange,
    compact_json,
    dashboard,
    histogram_params,
    index_pattern,
    pie_params,
    saved_search,
    table_params,
    terms_agg,
    visualization,
)
from pipeline.stores.indices import load_template

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

#: index pattern id -> (title, time field, mapping file in mappings/: the template the pipeline installs for
#: the pattern's indices, ``pipeline.stores.indices``, ``ledger`` and ``deadletters``)
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

EVERY_DATE = TimeRange("now-100y", "now+1y")
"""The range both dashboards open on: a century back to a year ahead, so whatever is indexed, not a
trailing window.

Articles are dated by publication (the seed's ``publishedDateTime``), which comes long before a seed file
arrives (the samples were published in 2021), so a trailing window such as ``now-1y`` opens on "No results
found". Not saving a range is no better: the picker's default (the last 15 minutes) applies. Ingest time
(``indexed_at``) as the time field would make the picker filter something other than what the charts and
the analysts' questions are about (publication), and a rebuild stamps every article again. The operators'
panels show state that lasts (a file quarantined last month is still quarantined; a dead letter waits until
replayed), which a window would hide. Up to a year ahead: a seed may carry a future publication date
(an embargo, a time zone). Narrow the range in the picker to look at a period."""


def saved_objects() -> list[dict[str, Any]]:
    """Every saved object, in an order where each object comes after those it references."""
    objects: list[dict[str, Any]] = []
    for ip_id, (title, time_field, mapping_file) in INDEX_PATTERNS.items():
        fields = index_pattern_fields(load_template(mapping_file)["template"]["mappings"])
        objects.append(index_pattern(ip_id, title, time_field, FIELD_FORMATS[ip_id], fields))

    objects += [
        visualization(
            VIS_TOPICS,
            "[seednews] Articles per topic",
            "Articles per topic, with the canonical display form of each topic (AI, Computer Vision...). "
            "An article with several topics counts once under each.",
            IP_ARTICLES,
            "table",
            table_params(),
            [COUNT_METRIC, terms_agg("2", "bucket", "topics", "Topic", size=50)],
        ),
        visualization(
            VIS_PROVIDERS,
            "[seednews] Articles per provider",
            "Articles per publisher (provider.name).",
            IP_ARTICLES,
            "table",
            table_params(),
            [COUNT_METRIC, terms_agg("2", "bucket", "provider.name", "Provider", size=50)],
        ),
        visualization(
            VIS_OVER_TIME,
            "[seednews] Articles over time",
            "Articles per day of publication (published_at).",
            IP_ARTICLES,
            "histogram",
            histogram_params("Published"),
            [
                COUNT_METRIC,
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
        visualization(
            VIS_IMAGE_HEALTH,
            "[seednews] Image health",
            "Articles by image_health: all_ok, some_broken, none_ok, unchecked (images not checked in that "
            "run), no_images.",
            IP_ARTICLES,
            "pie",
            pie_params(),
            [COUNT_METRIC, terms_agg("2", "segment", "image_health", "Image health")],
        ),
        visualization(
            VIS_TEXT_QUALITY,
            "[seednews] Text quality",
            "Articles by text_quality: clean, repaired (mojibake or entities undone), damaged (still broken "
            "after repair: U+FFFD, C1 controls, mojibake ftfy cannot undo; fix it at the source), split by "
            "the fields concerned (text_quality_fields).",
            IP_ARTICLES,
            "table",
            table_params(),
            [
                COUNT_METRIC,
                terms_agg("2", "bucket", "text_quality", "Text quality"),
                terms_agg("3", "bucket", "text_quality_fields", "Fields", size=20, missing=True),
            ],
        ),
        visualization(
            VIS_LEDGER_STATES,
            "[seednews] Seed files by ledger state",
            "What became of each seed file: indexed, quarantined, duplicate, failed, dead_letter...",
            IP_LEDGER,
            "pie",
            pie_params(),
            [COUNT_METRIC, terms_agg("2", "segment", "state", "State", size=20)],
        ),
        visualization(
            VIS_QUARANTINE,
            "[seednews] Quarantine reasons",
            "Quarantined seed files by stage and reason (the ledger; fix the file and it is picked up again).",
            IP_LEDGER,
            "table",
            table_params(),
            [
                COUNT_METRIC,
                terms_agg("2", "bucket", "stage", "Stage", size=20),
                terms_agg("3", "bucket", "reason.keyword", "Reason", size=50),
            ],
            query=Q_QUARANTINED,
        ),
        visualization(
            VIS_DEADLETTERS,
            "[seednews] Pending dead letters",
            "Documents OpenSearch refused for good and not yet replayed, by reason and HTTP status.",
            IP_DEADLETTER,
            "table",
            table_params(),
            [
                COUNT_METRIC,
                terms_agg("2", "bucket", "reason.keyword", "Reason", size=50),
                terms_agg("3", "bucket", "status", "HTTP status", size=10),
            ],
            query=Q_PENDING,
        ),
        saved_search(
            SEARCH_UNPUBLISHED,
            "[seednews] Unpublished articles",
            "Articles whose seed says published: false.",
            IP_ARTICLES,
            Q_UNPUBLISHED,
            ["title", "provider.name", "topics", "url"],
            "published_at",
        ),
        saved_search(
            SEARCH_BROKEN_IMAGES,
            "[seednews] Articles with broken images",
            "Articles with at least one checked image that is not ok (broken, not_image, timeout, "
            "unreachable, blocked, invalid).",
            IP_ARTICLES,
            Q_BROKEN_IMAGES,
            ["title", "provider.name", "image_health", "images_broken", "images_checked", "images.url"],
            "published_at",
        ),
        saved_search(
            SEARCH_DAMAGED_TEXT,
            "[seednews] Articles with damaged text",
            "Articles whose text still looks broken after repair (text_quality: damaged), with the fields "
            "concerned and the seed file to fix.",
            IP_ARTICLES,
            Q_DAMAGED_TEXT,
            ["title", "provider.name", "text_quality_fields", "seed.path"],
            "published_at",
        ),
        saved_search(
            SEARCH_MOST_CITED,
            "[seednews] Most cited articles",
            "Articles other indexed articles list among their related articles, the most cited first "
            "(cited_by_count; cited_by holds the ids of the citing articles: related.id:<id> finds them).",
            IP_ARTICLES,
            Q_CITED,
            ["title", "cited_by_count", "provider.name", "url"],
            "cited_by_count",
        ),
        saved_search(
            SEARCH_QUARANTINED,
            "[seednews] Quarantined seed files",
            "Seed files that could not become a document, with the stage and the reason.",
            IP_LEDGER,
            Q_QUARANTINED,
            ["root", "path", "stage", "reason", "run_id"],
            "updated_at",
        ),
        saved_search(
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
        dashboard(
            DASH_ANALYSTS,
            "[seednews] Articles (analysts)",
            "What is in the articles index: topics, providers, publication over time, unpublished articles, "
            "text quality, most cited articles. "
            "Opens on every publication date (the time field is published_at); narrow the range to a period.",
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
            time=EVERY_DATE,
        )
    )
    objects.append(
        dashboard(
            DASH_OPERATORS,
            "[seednews] Pipeline health (operators)",
            "Ledger states, quarantine reasons, pending dead letters and image health. Opens on every date; "
            "the range filters ledger panels on updated_at, dead letters on failed_at, image health on "
            "published_at.",
            [
                ("visualization", VIS_LEDGER_STATES, 0, 0, 16, 15),
                ("visualization", VIS_QUARANTINE, 16, 0, 32, 15),
                ("visualization", VIS_DEADLETTERS, 0, 15, 24, 15),
                ("visualization", VIS_IMAGE_HEALTH, 24, 15, 24, 15),
                ("search", SEARCH_QUARANTINED, 0, 30, 48, 15),
                ("search", SEARCH_DEADLETTERS, 0, 45, 24, 15),
                ("search", SEARCH_BROKEN_IMAGES, 24, 45, 24, 15),
            ],
            time=EVERY_DATE,
        )
    )
    return objects


def render() -> str:
    """The NDJSON text: one saved object per line, keys sorted, newline-terminated."""
    return "".join(compact_json(o) + "\n" for o in saved_objects())


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
