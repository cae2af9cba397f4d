"""Documents and verdicts: which image URLs a document has, its ``image_health``, the run summary."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.stages.images.config import _JUDGED_STATUSES, STATUSES, UNCHECKED
from pipeline.types import ImageHealth, ImageVerdict

log = logging.getLogger("pipeline.stages.images")

# --------------------------------------------------------------------------- documents


def summarize(verdicts: Iterable[ImageVerdict], unchecked: int = 0) -> dict[str, int]:
    """``{status: count}`` for every status in :data:`STATUSES` (zeros included), for the run report;
    plus ``unchecked`` when some image URLs were left unchecked (see :func:`images_over_cap`)."""
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)  # plain keys: the report travels as JSON
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    if unchecked:
        counts[UNCHECKED] = unchecked
    return counts


def images_over_cap(doc: Mapping[str, Any], limit: int | None) -> int:
    """How many of the document's image URLs :func:`collect_image_urls` leaves out with ``limit``."""
    return 0 if limit is None else max(0, len(collect_image_urls(doc)) - limit)


def _image_lists(doc: Mapping[str, Any]) -> Iterable[tuple[bool, list[Any]]]:
    """``(counts_for_health, images list)`` for every image list of a document, in order."""

    def lists_of(obj: Any, own: bool) -> Iterable[tuple[bool, list[Any]]]:
        if not isinstance(obj, Mapping):
            return
        imgs = obj.get("images")
        if isinstance(imgs, list):
            yield own, imgs
        prov = obj.get("provider")
        if isinstance(prov, Mapping) and isinstance(prov.get("images"), list):
            yield own, prov["images"]

    yield from lists_of(doc, True)
    related = doc.get("related")
    if isinstance(related, list):
        for rel in related:
            yield from lists_of(rel, False)


def _copy_image_paths(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` in which every container :func:`annotate_document` writes into (the document,
    ``provider``, ``related`` and its entries, each ``images`` list) is new; everything else is shared.
    Was ``copy.deepcopy``: a fifth of the CPU of a run with image checks off, copying text nobody changes."""
    out = dict(doc)

    def own_copy(obj: dict[str, Any]) -> None:
        if isinstance(obj.get("images"), list):
            obj["images"] = list(obj["images"])
        prov = obj.get("provider")
        if isinstance(prov, Mapping) and isinstance(prov.get("images"), list):
            obj["provider"] = {**prov, "images": list(prov["images"])}

    own_copy(out)
    related = out.get("related")
    if isinstance(related, list):
        out["related"] = [dict(r) if isinstance(r, Mapping) else r for r in related]
        for rel in out["related"]:
            if isinstance(rel, dict):
                own_copy(rel)
    return out


def collect_image_urls(doc: Mapping[str, Any], limit: int | None = None) -> list[str]:
    """Every image URL of a normalized document, in document order, duplicates removed:
    ``images``, ``provider.images``, then each ``related[].images`` and ``related[].provider.images``.
    Images without a non-empty string ``url`` are skipped. With ``limit`` (``max_images_per_doc``),
    only the first ``limit`` of them: the URLs to check."""
    out: dict[str, None] = {}
    for _own, imgs in _image_lists(doc):
        for img in imgs:
            if isinstance(img, Mapping):
                u = img.get("url")
                if isinstance(u, str) and u.strip():
                    out.setdefault(u, None)
    return list(out)[:limit]


def annotate_document(
    doc: Mapping[str, Any], verdicts: Mapping[str, ImageVerdict] | None, limit: int | None = None
) -> dict[str, Any]:
    """Return a NEW document with image check results; ``doc`` is not modified.

    Every image object (in ``images``, ``provider.images``, ``related[].images``,
    ``related[].provider.images``) gets ``"check": {"status", "http_code", "checked_at", "reason"}``;
    an image without a verdict gets status ``"unchecked"`` and nulls (an image without a usable
    ``url`` gets ``"invalid"`` when verdicts were given). With ``limit`` (``max_images_per_doc``),
    an image whose URL is not among the document's first ``limit`` URLs is ``"unchecked"`` with a
    reason saying so, whatever ``verdicts`` holds (the same URL may be checked for another document).

    Document-level facets count only the article's own images and its provider's images, not those
    of related articles (those belong to other articles and get their own checks):

    * ``images_checked``: images with a judging verdict (``unchecked`` and ``relative`` excluded:
      a relative URL with no base configured says nothing about the image);
    * ``images_broken``: of those, the ones whose status is not ``ok`` (broken, not_image, timeout,
      unreachable, blocked, invalid);
    * ``image_health``: ``no_images`` when there are no such images at all; ``unchecked`` when none
      was judged (always the case when ``verdicts`` is ``None``); otherwise ``all_ok`` /
      ``some_broken`` / ``none_ok`` over the judged images.
    """
    out = _copy_image_paths(doc)
    capped = verdicts is not None and limit is not None
    allowed = set(collect_image_urls(doc, limit)) if capped else set()
    checked = broken = total = 0
    for own, imgs in _image_lists(out):
        for i, img in enumerate(imgs):
            if not isinstance(img, dict):
                continue
            img = imgs[i] = dict(img)
            url = img.get("url")
            v = verdicts.get(url) if (verdicts is not None and isinstance(url, str)) else None
            check: dict[str, Any]
            if capped and isinstance(url, str) and url.strip() and url not in allowed:
                reason = f"not checked: only the first {limit} image URLs of a document are checked"
                check = {"status": UNCHECKED, "http_code": None, "checked_at": None, "reason": reason}
            elif v is not None:
                check = {"status": v.status, "http_code": v.http_code, "checked_at": v.checked_at, "reason": v.reason}
            elif verdicts is not None and not (isinstance(url, str) and url.strip()):
                check = {"status": "invalid", "http_code": None, "checked_at": None, "reason": "image has no URL"}
            else:
                check = {"status": UNCHECKED, "http_code": None, "checked_at": None, "reason": None}
            img["check"] = check
            if own:
                total += 1
                if check["status"] in _JUDGED_STATUSES:
                    checked += 1
                    broken += check["status"] != "ok"
    health: ImageHealth
    if total == 0:
        health = "no_images"
    elif checked == 0:
        health = "unchecked"
    elif broken == 0:
        health = "all_ok"
    elif broken == checked:
        health = "none_ok"
    else:
        health = "some_broken"
    out["image_health"] = health
    out["images_broken"] = broken
    out["images_checked"] = checked
    return out


IMAGE_CHECK_MAPPING: dict[str, Any] = {
    "properties": {
        "status": {"type": "keyword"},
        "http_code": {"type": "short"},
        "checked_at": {"type": "date"},
        "reason": {"type": "keyword", "ignore_above": 512},
    }
}
"""Mapping of the ``check`` object added to every image (merge into the document index mapping)."""

DOCUMENT_FACETS_MAPPING: dict[str, Any] = {
    "image_health": {"type": "keyword"},
    "images_broken": {"type": "integer"},
    "images_checked": {"type": "integer"},
}
"""Mapping of the document-level facets :func:`annotate_document` adds."""
