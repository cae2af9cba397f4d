"""Stage 6, report: what happened to every seed, as data (for XCom and tests) and as text (for people).

A ``RunReport`` counts outcomes per state (exactly) and keeps a bounded sample of the interesting ones
(everything but ``indexed`` and ``unchanged``) with their reasons; the ledger index keeps every file.
Reports are built per chunk and merged; ``render()`` gives the short summary printed at the end of every
run and in the Airflow task log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.policy import ORDER, QUIET_STATES
from pipeline.types import SeedOutcome, State

MAX_LISTED = 20  # per section in the text summary
MAX_SAMPLES = 1000  # per state kept in memory; counts stay exact
MAX_XCOM_ITEMS = 200  # per state when the report travels through XCom


@dataclass
class RunReport:
    counts: dict[State, int] = field(default_factory=dict)  # outcome state -> files
    samples: dict[State, list[dict[str, Any]]] = field(default_factory=dict)  # state -> outcome briefs
    repaired_docs: int = 0
    warned_docs: int = 0  # documents indexed with a dropped list element (see the document's `warnings`)
    removed: int = 0  # articles taken out of the index (no seed file carries them any more)
    unreadable_folders: int = 0  # folders the walk could not list: the articles of their files were kept
    images: dict[str, int] = field(default_factory=dict)  # verdict -> count
    text_quality: dict[str, int] = field(default_factory=dict)  # clean/repaired/damaged -> documents
    dry_run: bool = False
    target: str = ""
    notes: list[str] = field(default_factory=list)

    # -------------------------------------------------------------- building
    def add(self, outcome: SeedOutcome) -> None:
        """Count one outcome (the only place outcomes are counted)."""
        self.counts[outcome.state] = self.counts.get(outcome.state, 0) + 1
        if outcome.state not in QUIET_STATES:
            kept = self.samples.setdefault(outcome.state, [])
            if len(kept) < MAX_SAMPLES:
                kept.append(outcome.brief())

    def move(self, from_state: State, to_state: State, briefs: list[dict[str, Any]]) -> None:
        """Outcomes that turned out differently after the fact (``finalize``'s reconciliation, or a dry
        run's later chunk superseding a copy an earlier chunk counted)."""
        if briefs:
            self.counts[from_state] = self.counts.get(from_state, 0) - len(briefs)
            self.counts[to_state] = self.counts.get(to_state, 0) + len(briefs)
            self.counts = {k: v for k, v in self.counts.items() if v}
            if to_state not in QUIET_STATES:
                kept = self.samples.setdefault(to_state, [])
                kept.extend(briefs[: max(0, MAX_SAMPLES - len(kept))])

    def merge(self, other: RunReport) -> RunReport:
        counts = Counter(self.counts)
        counts.update(other.counts)  # signed: a chunk may move an outcome an earlier chunk counted
        self.counts = {k: v for k, v in counts.items() if v}
        for state, items in other.samples.items():
            kept = self.samples.setdefault(state, [])
            kept.extend(items[: max(0, MAX_SAMPLES - len(kept))])
        for name in ("repaired_docs", "warned_docs", "removed", "unreadable_folders"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.images = dict(Counter(self.images) + Counter(other.images))
        self.text_quality = dict(Counter(self.text_quality) + Counter(other.text_quality))
        self.notes.extend(other.notes)
        self.dry_run = self.dry_run or other.dry_run
        self.target = self.target or other.target
        return self

    # -------------------------------------------------------------- reading
    def n(self, state: State) -> int:
        return self.counts.get(state, 0)

    def listed(self, state: State) -> list[dict[str, Any]]:
        return self.samples.get(state, [])

    @property
    def files_seen(self) -> int:
        """Seed files that exist and were looked at (deleted ones are gone)."""
        return sum(v for k, v in self.counts.items() if k != "deleted")

    @property
    def indexed(self) -> int:
        return self.n("indexed")

    @property
    def unchanged(self) -> int:
        return self.n("unchanged")

    @property
    def quarantined(self) -> list[dict[str, Any]]:
        return self.listed("quarantined")

    @property
    def failed(self) -> list[dict[str, Any]]:
        return self.listed("failed") + self.listed("dead_letter")

    @property
    def ok(self) -> bool:
        """True when every seed was indexed, left unchanged, or deliberately set aside: no document
        failed to index and no seed met a bug (``internal_error``)."""
        return self.n("failed") == 0 and self.n("dead_letter") == 0 and self.n("internal_error") == 0

    def problem(self) -> str | None:
        """Why the run is not ok, in one line (``None`` when it is)."""
        parts = []
        if self.n("failed") + self.n("dead_letter"):
            parts.append(
                f"{self.n('failed') + self.n('dead_letter')} documents failed to index ({self.n('dead_letter')} "
                f"kept as dead letters for replay, {self.n('failed')} retryable: the next run tries them again)"
            )
        if self.n("internal_error"):
            parts.append(
                f"{self.n('internal_error')} seed files met an internal error (a bug, not bad data: every other "
                "file was processed; the tracebacks are in the log, the next run tries these files again)"
            )
        return "; ".join(parts) or None

    # -------------------------------------------------------------- (de)serialising for XCom
    def to_dict(self, max_items: int | None = None) -> dict[str, Any]:
        """JSON-able data. ``max_items`` caps each sample list (XCom is for small values); the counts
        stay exact."""
        data = asdict(self)
        if max_items is not None:
            data["samples"] = {k: v[:max_items] for k, v in self.samples.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        return cls(**data)

    # -------------------------------------------------------------- for people
    def render(self) -> str:
        seen = self.files_seen
        parts = [
            f"{self.n(s)} {'would be indexed' if s == 'indexed' and self.dry_run else s.replace('_', ' ')}"
            for s in ORDER
            if self.n(s) and s != "deleted"
        ]
        lines = [
            f"seednews run{' (dry run)' if self.dry_run else ''}: {seen} seed files seen: "
            + (", ".join(parts) or "nothing to do")
            + ("" if self.ok else f"  [NOT OK: {self.problem()}]")
        ]
        if self.n("deleted") or self.removed:
            lines.append(
                f"  {self.n('deleted')} seed files deleted since the last run; "
                f"{self.removed} articles removed from the index"
            )
        if self.unreadable_folders:
            lines.append(
                f"  {self.unreadable_folders} folders could not be read: the articles of the files in them were kept"
            )
        if self.target:
            lines.append(f"  target index: {self.target}")
        if self.repaired_docs:
            lines.append(f"  text repaired in {self.repaired_docs} documents (mojibake, entities)")
        if self.warned_docs:
            lines.append(f"  {self.warned_docs} documents indexed with a bad list element dropped (field `warnings`)")
        if self.text_quality:
            lines.append("  text quality: " + ", ".join(f"{k} {v}" for k, v in sorted(self.text_quality.items())))
        if self.images:
            lines.append("  images: " + ", ".join(f"{k} {v}" for k, v in sorted(self.images.items())))
        for state in ORDER:
            if state in QUIET_STATES or not self.n(state):
                continue
            items = self.listed(state)
            lines.append(f"  {state.replace('_', ' ')} ({self.n(state)}):")
            lines += [f"    - {_line(i)}" for i in items[:MAX_LISTED]]
            if self.n(state) > min(len(items), MAX_LISTED):
                lines.append(
                    f"    … and {self.n(state) - min(len(items), MAX_LISTED)} more (the ledger index lists every file)"
                )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _line(item: dict[str, Any]) -> str:
    return item["path"] + "".join(f": {item[k]}" for k in ("stage", "reason") if item.get(k))
