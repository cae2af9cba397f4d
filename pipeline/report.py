"""Stage 6, report: what happened to every seed, as data (for XCom and tests) and as text (for people).

``RunReport`` is built per batch and merged; ``render()`` gives the short summary printed at the end of
every run and in the Airflow task log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED = 20  # per section in the text summary; the data keeps everything


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

    # -------------------------------------------------------------- building
    def merge(self, other: "RunReport") -> "RunReport":
        for name in ("files_seen", "unchanged", "indexed", "created", "updated", "dead_lettered", "repaired_docs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("superseded", "duplicates", "quarantined", "failed", "notes"):
            getattr(self, name).extend(getattr(other, name))
        self.images = dict(Counter(self.images) + Counter(other.images))
        self.dry_run = self.dry_run or other.dry_run
        self.target = self.target or other.target
        return self

    @property
    def ok(self) -> bool:
        """True when every seed was indexed or deliberately set aside (quarantine/duplicate/superseded)."""
        return not self.failed

    # -------------------------------------------------------------- (de)serialising for XCom
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
            + f", {len(self.quarantined)} quarantined, {len(self.failed)} failed"
            + (f", {len(self.duplicates) + len(self.superseded)} duplicates set aside" if self.duplicates or self.superseded else ""),
        ]
        if self.target:
            lines.append(f"  target index: {self.target}")
        if self.repaired_docs:
            lines.append(f"  text repaired in {self.repaired_docs} documents (mojibake, entities)")
        if self.images:
            lines.append("  images: " + ", ".join(f"{k} {v}" for k, v in sorted(self.images.items())))
        lines += _section("quarantined", self.quarantined, lambda q: f"{q['path']}: {q['stage']}: {q['reason']}")
        lines += _section("failed", self.failed,
                          lambda f: f"{f.get('path')}: id {f['id']}: HTTP {f['status']}: {f['reason']}"
                          + (" (retried next run)" if f.get("retryable") else " (kept in the dead-letter index for replay)"))
        lines += _section("duplicates", self.duplicates, lambda d: f"{d['path']}: same article as {d['winner']} (newer file wins)")
        lines += _section("superseded", self.superseded, lambda d: f"{d['path']}: {d['reason']}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _section(title: str, items: list[dict[str, Any]], fmt) -> list[str]:
    if not items:
        return []
    out = [f"  {title} ({len(items)}):"]
    out += [f"    - {fmt(i)}" for i in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        out.append(f"    … and {len(items) - MAX_LISTED} more (see the report data)")
    return out
