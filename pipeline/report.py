"""Stage 6, report: what happened to every seed, as data (for XCom and tests) and as text (for people).

``RunReport`` is built per batch and merged; ``render()`` gives the short summary printed at the end of
every run and in the Airflow task log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED = 20  # per section in the text summary
MAX_XCOM_ITEMS = 200  # per list when the report travels through XCom; the ledger keeps every file
LISTS = ("superseded", "duplicates", "quarantined", "failed")


@dataclass
class RunReport:
    files_seen: int = 0
    unchanged: int = 0  # skipped: same content as when the ledger last settled it
    indexed: int = 0  # acknowledged by OpenSearch (created + updated)
    created: int = 0
    updated: int = 0
    superseded: list[dict[str, str]] = field(default_factory=list)  # {path, id, reason}
    duplicates: list[dict[str, str]] = field(default_factory=list)  # {path, id, winner}
    quarantined: list[dict[str, str]] = field(default_factory=list)  # {path, stage, reason}
    failed: list[dict[str, Any]] = field(default_factory=list)  # {path, id, status, reason}
    dead_lettered: int = 0
    repaired_docs: int = 0
    images: dict[str, int] = field(default_factory=dict)  # verdict -> count
    dry_run: bool = False
    target: str = ""
    notes: list[str] = field(default_factory=list)
    omitted: dict[str, int] = field(default_factory=dict)  # list name -> items left out by to_dict(max_items)

    def n(self, name: str) -> int:
        """How many items a list section really has (kept + left out)."""
        return len(getattr(self, name)) + self.omitted.get(name, 0)

    # -------------------------------------------------------------- building
    def merge(self, other: "RunReport") -> "RunReport":
        for name in ("files_seen", "unchanged", "indexed", "created", "updated", "dead_lettered", "repaired_docs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("superseded", "duplicates", "quarantined", "failed", "notes"):
            getattr(self, name).extend(getattr(other, name))
        self.images = dict(Counter(self.images) + Counter(other.images))
        self.omitted = dict(Counter(self.omitted) + Counter(other.omitted))
        self.dry_run = self.dry_run or other.dry_run
        self.target = self.target or other.target
        return self

    @property
    def counts(self) -> dict[str, int]:
        """Files per outcome state (``indexed``, ``unchanged``, ``quarantined``, ...); zero counts left out."""
        failed = self.failed
        retryable = sum(1 for f in failed if f.get("retryable"))
        extra_failed = self.omitted.get("failed", 0)
        raw = {
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "quarantined": self.n("quarantined"),
            "duplicate": self.n("duplicates") + self.n("superseded"),
            "failed": retryable,
            "dead_letter": len(failed) - retryable + extra_failed,
        }
        return {k: v for k, v in raw.items() if v}

    @property
    def ok(self) -> bool:
        """True when every seed was indexed or deliberately set aside (quarantine/duplicate/superseded)."""
        return self.n("failed") == 0

    # -------------------------------------------------------------- (de)serialising for XCom
    def to_dict(self, max_items: int | None = None) -> dict[str, Any]:
        """JSON-able data. ``max_items`` caps each list (XCom is for small values); the counts stay
        exact through ``omitted``."""
        data = asdict(self)
        if max_items is not None:
            omitted = dict(self.omitted)
            for name in LISTS:
                extra = len(data[name]) - max_items
                if extra > 0:
                    data[name] = data[name][:max_items]
                    omitted[name] = omitted.get(name, 0) + extra
            data["omitted"] = omitted
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunReport":
        return cls(**data)

    # -------------------------------------------------------------- for people
    def render(self) -> str:
        verb = "would index" if self.dry_run else "indexed"
        lines = [
            f"seednews run{' (dry run)' if self.dry_run else ''}: {self.files_seen} seed files seen, "
            + (f"{self.unchanged} unchanged, " if self.unchanged else "")
            + f"{self.indexed} {verb}"
            + (f" ({self.created} new, {self.updated} updated)" if not self.dry_run else "")
            + f", {self.n('quarantined')} quarantined, {self.n('failed')} failed"
            + (f", {self.n('duplicates') + self.n('superseded')} duplicates set aside"
               if self.n("duplicates") or self.n("superseded") else ""),
        ]
        if self.target:
            lines.append(f"  target index: {self.target}")
        if self.repaired_docs:
            lines.append(f"  text repaired in {self.repaired_docs} documents (mojibake, entities)")
        if self.images:
            lines.append("  images: " + ", ".join(f"{k} {v}" for k, v in sorted(self.images.items())))
        lines += _section("quarantined", self.quarantined, self.n("quarantined"), lambda q: f"{q['path']}: {q['stage']}: {q['reason']}")
        lines += _section("failed", self.failed, self.n("failed"),
                          lambda f: f"{f.get('path')}: id {f['id']}: HTTP {f['status']}: {f['reason']}"
                          + (" (retried next run)" if f.get("retryable") else " (kept in the dead-letter index for replay)"))
        lines += _section("duplicates", self.duplicates, self.n("duplicates"), lambda d: f"{d['path']}: same article as {d['winner']} (newer file wins)")
        lines += _section("superseded", self.superseded, self.n("superseded"), lambda d: f"{d['path']}: {d['reason']}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _section(title: str, items: list[dict[str, Any]], total: int, fmt) -> list[str]:
    if not total:
        return []
    out = [f"  {title} ({total}):"]
    out += [f"    - {fmt(i)}" for i in items[:MAX_LISTED]]
    if total > min(len(items), MAX_LISTED):
        out.append(f"    … and {total - min(len(items), MAX_LISTED)} more (the ledger index lists every file)")
    return out
