"""Planning: compare the seed folder with the ledger, decide what each file needs, split the work.

For every seed-named file discovery finds, planning ends in one of:

- a refusal (link out of the folder, odd name, too big, unreadable): recorded now, not read;
- ``unchanged``: the ledger settled this file with the same content. The stat fingerprint (size,
  mtime, ctime, inode) is the first filter, as git and rsync use it; when it differs the content hash
  decides, so an unchanged file is never parsed again and rarely even read. A fingerprint taken within
  the source's timestamp granularity of the hash is "racily clean" (git's term: an edit just after the
  hash, in the same tick, keeps size, mtime and ctime) and is hashed again, then recorded with the new
  hash time, so it is trusted from the next run on;
- work: the ``SeedFile`` (with its content hash and ingest sequence) goes into a batch.

The ledger is read in two steps: the fingerprints of the whole folder (``Ledger.fingerprints``: doc
values only, no ``_source``), which settle every trusted unchanged file; then, for the rest, only what
deciding needs: the hash and ingest sequence of files whose stat changed (a rebuild reads them with the
fingerprints), the whole entries of refused and vanished files (looked up by id, or scanned when they are
most of the folder).

Files the ledger knows that are gone become ``deleted`` outcomes, unless a large share of the folder
vanished at once (``VanishGuard``): then the run stops before anything is deleted, because the folder
is more likely unmounted or half-copied than emptied on purpose.

**Moves.** A file is gone only when its content is gone: a known file missing from its path whose
content hash (sha256 of the bytes, for folders and object stores alike: ``Source.hash`` computes it for
every new path while planning, and the ledger holds the vanished file's) reappears at a path where it is
new is *moved*, and does not count for the guard (archiving most of a folder into ``2025/`` is not an
unmount). Moved and edited is a new content: the old one is gone and counts. The old path's entry ends
``deleted`` (reason ``moved: its content is now at ...``), listing its article as an orphan as any
deletion does; the new path is processed with the content's own ingest sequence (the highest of its
vanished copies) and settles ``indexed`` with the same ``doc_id`` and ``seq``, so when ``finalize``
sweeps the orphan, a file carries it and nothing is removed. The document is sent again with the *same*
version: it stores ``seed.path`` (which file carries it), and the bulk writes use
``version_type=external_gte``, which accepts an equal version, so the article is replaced in place
(never deleted, never missing from the index), its ``seed.path`` follows the file and its version stays.
Not a newer sequence: that would make a renamed copy win over a copy of the same article ingested later,
changing what readers see because of a rename. Not the ledger alone: the index would keep naming a path
that no longer exists (and a concurrent run's conflict check compares ``seed.path``). The price is one
parse and write of each moved file, once; the run after that finds every file unchanged.

**Unreadable folders.** A folder the walk cannot list (``cannot read folder``, quarantined under its own
path as before) hides its files; they are not gone. The ledger's files under it keep their entries and
their articles (no ``deleted`` outcome, not counted for the guard), a warning and a report note name the
folder, and ``RunReport.unreadable_folders`` counts it.

**Ingest sequence.** Content the pipeline has not seen before gets a sequence number above every number
in the ledger; content it has seen keeps its number. The number is the document's external version, so
between two files carrying one article the copy ingested last wins, an edit always wins over the state
it replaces (whatever the file's mtime says: ``cp -p``, ``rsync -t`` and tar restore old mtimes), and
the winner is the same after a full rebuild. Files first seen in the same run are numbered in order of
modification time, then path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.errors import VanishedFolderError
from pipeline.run.outcomes import settle
from pipeline.run.report import RunReport
from pipeline.sources import open_source
from pipeline.sources.folder import UNREADABLE_FOLDER
from pipeline.stores.ledger import SETTLED, Fingerprint, Ledger, LedgerEntry
from pipeline.types import SeedFile, SeedOutcome, display_path

log = logging.getLogger("seednews")

SEQ_SHIFT = 20  # sequence = milliseconds << 20 | position: a million new files per millisecond before it carries


@dataclass(frozen=True)
class VanishGuard:
    """Refuse to delete when more than ``share`` of the known files and more than ``min_files`` vanish."""

    share: float = 0.2
    min_files: int = 10

    def check(self, vanished: int, known: int, root: str, moved: int = 0) -> None:
        """``vanished``: files whose content is nowhere in the listing; ``moved``: files whose content
        reappears at another path (not counted, only mentioned)."""
        if vanished > self.min_files and vanished > self.share * known:
            also = f"; {moved} more moved within it" if moved else ""
            raise VanishedFolderError(
                f"{vanished} of the {known} seed files the ledger knows in {root} are gone (more than "
                f"{self.share:.0%} and more than {self.min_files}{also}): the folder may be unmounted or half-copied, "
                "so nothing was deleted. If the files were removed on purpose, run again with "
                "--allow-mass-delete (DAG Param allow_mass_delete)."
            )


@dataclass(frozen=True)
class Batch:
    """One unit of work for a worker: seed files of one folder, as planned."""

    root: str
    real_root: str
    seeds: tuple[SeedFile, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "real_root": self.real_root, "files": [s.to_row() for s in self.seeds]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Batch:
        root, real_root = data["root"], data["real_root"]
        return cls(root, real_root, tuple(SeedFile.from_row(r, root, real_root) for r in data["files"]))


@dataclass
class Plan:
    root: str
    real_root: str
    batches: list[Batch]
    report: RunReport = field(default_factory=RunReport)

    @property
    def todo(self) -> int:
        return sum(len(b.seeds) for b in self.batches)


def seq_base(ledger: Ledger | None) -> int:
    """The first ingest sequence number of this run: above the clock and above every number used."""
    now = (time.time_ns() // 1_000_000) << SEQ_SHIFT
    return max(now, ledger.max_seq() + 1) if ledger is not None else now


def _same_refusal(prev: LedgerEntry | None, o: SeedOutcome) -> bool:
    return (
        prev is not None
        and prev.state == o.state
        and prev.stage == o.stage
        and prev.reason == o.reason
        and prev.same_stat(o.seed)
    )


def _whole_entries(served: Ledger | None, root: str, keys: list[str], known: int) -> dict[str, LedgerEntry]:
    """Whole ledger entries for ``keys``: looked up by id, or one scan of the folder when they are most
    of it (a mass deletion the guard was told to allow)."""
    if served is None or not keys:
        return {}
    if len(keys) > known // 2:
        wanted = set(keys)
        return {k: e for k, e in served.entries_for_root(root).items() if k in wanted}
    return served.lookup(keys)


def _add_content(served: Ledger, root: str, known: dict[str, Fingerprint], keys: list[str]) -> None:
    """Fill in hash and ingest sequence of ``keys`` in ``known``: from their whole entries, or from a
    second read of the folder's fingerprints when they are most of it."""
    if len(keys) > len(known) // 2:
        known.update(served.fingerprints(root, content=True))
        return
    for key, e in served.lookup(keys).items():
        known[key] = known[key]._replace(sha256=e.sha256, seq=e.seq)


def _split_unreadable(vanished: list[LedgerEntry], folders: list[str]) -> tuple[list[LedgerEntry], list[LedgerEntry]]:
    """``vanished`` in two: the files really missing, and those under a folder the walk could not read
    (``""``: the seed folder itself), which are not known to be gone."""
    if not folders:
        return vanished, []
    prefixes = tuple(f"{f}/" for f in folders if f)
    everything = "" in folders

    def hidden(e: LedgerEntry) -> bool:
        return everything or e.path.startswith(prefixes)

    return [e for e in vanished if not hidden(e)], [e for e in vanished if hidden(e)]


def _moves(vanished: list[LedgerEntry], todo: list[SeedFile]) -> dict[str, list[int]]:
    """Vanished content that reappears in this listing at a path where it is new: by content hash, the
    positions in ``todo`` of the files that now hold it. Those files take the ingest sequence of the
    content (the highest one, when several vanished copies held it: the copy the index serves)."""
    seqs: dict[str, int] = {}
    for e in vanished:
        if e.sha256:
            seqs[e.sha256] = max(seqs.get(e.sha256, 0), e.seq)
    if not seqs:
        return {}
    moved: dict[str, list[int]] = {}
    for i, s in enumerate(todo):
        if not s.seq and s.sha256 in seqs:  # new at this path (known content keeps its own number already)
            moved.setdefault(s.sha256, []).append(i)
            if seqs[s.sha256]:
                todo[i] = replace(s, seq=seqs[s.sha256])
    return moved


def make_plan(
    options,
    client,
    settings,
    target: str,
    served: Ledger | None,
    ledger: Ledger | None,
    *,
    s3_client: object | None = None,
) -> Plan:
    """Discover ``options.seed_dir`` (a folder or ``s3://bucket/prefix``: ``pipeline.sources``) and plan the run.

    ``served`` is the ledger of the index readers see (sequence numbers and what is known);
    ``ledger`` the one this run writes (the same, or a rebuild's fresh one; ``None`` in a dry run);
    ``s3_client`` lists an ``s3://`` location (None: one from the environment)."""
    source = open_source(options.seed_dir, s3_client=s3_client)
    root, real_root = source.root, source.real_root
    rebuild = options.full_rebuild
    # a rebuild compares every file's hash with the ledger (an unchanged file keeps its ingest sequence);
    # an incremental run needs hashes only for the files whose stat changed, fetched below
    known = served.fingerprints(root, content=rebuild) if served is not None else {}
    skip_unchanged = options.skip_unchanged and not rebuild and ledger is not None
    replay = not rebuild and options.replay_dead_letters
    window = source.racy_window_ns
    max_bytes = options.parse.max_bytes
    outcomes: list[SeedOutcome] = []
    todo: list[SeedFile] = []
    stat_refresh: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    pending: list[SeedFile | SeedOutcome] = []
    for item in source.walk():  # first the cheap filter, on the fingerprints alone
        seed = item.seed if isinstance(item, SeedOutcome) else item
        seen.add(seed.key)
        fp = known.get(seed.key)
        if (
            isinstance(item, SeedFile)
            and fp is not None
            and fp.trusts_stat(seed, window)
            and ((skip_unchanged and fp.state in SETTLED) or (replay and fp.state == "dead_letter"))
        ):
            if not (replay and fp.state == "dead_letter"):  # a replayed dead letter's outcome comes from finalize
                outcomes.append(SeedOutcome(seed, "unchanged"))
            continue
        pending.append(item)

    live = {k for k, f in known.items() if f.state != "deleted"}
    vanished_keys = [k for k in live if k not in seen]
    unreadable = [
        display_path(i.seed.rel)
        for i in pending
        if isinstance(i, SeedOutcome) and i.stage == "discover" and (i.reason or "").startswith(UNREADABLE_FOLDER)
    ]
    guarded = bool(vanished_keys) and not options.allow_mass_delete
    if guarded and not unreadable and not any(isinstance(i, SeedFile) for i in pending):
        # nothing new or changed can be where the vanished files went (an unmounted folder): stop now
        options.vanish_guard.check(len(vanished_keys), len(live), root)
    # Whole entries only where a refusal's stage and reason, or a vanished file's article, matter: the
    # fingerprints carry state, hash and ingest sequence for everything else (a rebuild of 100,000 files
    # used to read every whole entry here: ~3x the time and ~170 MB more at the peak)
    changed = [i.key for i in pending if isinstance(i, SeedFile) and i.key in known]
    if changed and served is not None and not rebuild:
        _add_content(served, root, known, changed)
    refusals: list[SeedOutcome] = [i for i in pending if isinstance(i, SeedOutcome)]
    full = _whole_entries(
        served, root, [o.seed.key for o in refusals if o.seed.key in known] + vanished_keys, len(known)
    )
    hash_refused: list[SeedOutcome] = []
    for item in pending:  # then the files that changed or are new: hash them
        if isinstance(item, SeedOutcome):
            continue
        seed = item
        prev = known.get(seed.key)
        settled = skip_unchanged and prev is not None and prev.state in SETTLED
        # a dead letter of unchanged content gets its outcome from the replay (finalize), not from here
        replayed = replay and prev is not None and prev.state == "dead_letter"
        hashed = source.hash(seed, max_bytes)
        if isinstance(hashed, SeedOutcome):
            hash_refused.append(hashed)
            continue
        if prev is not None and prev.sha256 == hashed.sha256:
            if settled or replayed:
                if not replayed:
                    outcomes.append(SeedOutcome(hashed, "unchanged"))
                stat_refresh[seed.key] = {
                    "size": hashed.size,
                    "mtime_ns": hashed.mtime_ns,
                    "ctime_ns": hashed.ctime_ns,
                    "ino": hashed.ino,
                    "hashed_ns": hashed.hashed_ns,
                }
                continue
            hashed = replace(hashed, seq=prev.seq)  # seen before: keeps its place in the order
        todo.append(hashed)
    # files that became unreadable while being hashed: compared with their whole entries, like refusals
    full.update(_whole_entries(served, root, [o.seed.key for o in hash_refused if o.seed.key in known], len(known)))
    for refused in refusals + hash_refused:
        unchanged = skip_unchanged and _same_refusal(full.get(refused.seed.key), refused)
        outcomes.append(SeedOutcome(refused.seed, "unchanged") if unchanged else refused)

    vanished = [full[k] for k in vanished_keys if k in full]  # (one deleted in between has no entry now)
    vanished, hidden = _split_unreadable(vanished, unreadable)
    moved_to = _moves(vanished, todo)
    if guarded:
        gone_n = sum(1 for e in vanished if e.sha256 not in moved_to)
        if gone_n:
            options.vanish_guard.check(gone_n, len(live), root, moved=len(vanished) - gone_n)
    previous = dict(full)
    for e in vanished:
        gone = SeedFile(
            e.root, e.path, real_root, e.path, e.size, e.mtime_ns, e.ctime_ns, e.ino, e.sha256, e.seq, e.hashed_ns
        )
        previous[gone.key] = e  # the stored key is the truth (names that were not UTF-8 are shown escaped)
        if not rebuild:
            where = moved_to.get(e.sha256)
            why = f"moved: its content is now at {display_path(todo[where[0]].rel)}" if where else "the file is gone"
            outcomes.append(SeedOutcome(gone, "deleted", "plan", why, e.doc_id))

    fresh = sorted((i for i, s in enumerate(todo) if not s.seq), key=lambda i: (todo[i].mtime_ns, todo[i].rel))
    base = seq_base(served)
    for rank, i in enumerate(fresh):  # in place: one SeedFile per file alive at a time, not two
        todo[i] = replace(todo[i], seq=base + rank)

    report = RunReport(dry_run=options.dry_run, target=target)
    report.unreadable_folders = len(unreadable)
    if unreadable:
        shown = ", ".join(repr(f or ".") for f in unreadable[:10]) + (" …" if len(unreadable) > 10 else "")
        note = (
            f"cannot read folder {shown}: the {len(hidden)} files the ledger knows in it keep their articles "
            "until it can be read again"
        )
        log.warning("%s: %s", root, note)
        report.notes.append(note)
    moved_n = sum(len(v) for v in moved_to.values())
    if moved_n and not rebuild:
        report.notes.append(
            f"{moved_n} files moved (the content of a file gone from its old path is at a new one): they keep "
            "their articles and ingest sequence"
        )
    settle(
        outcomes,
        ledger=ledger,
        report=report,
        run_id=options.run_id,
        target=target,
        previous={} if rebuild else previous,
    )
    if served is not None and stat_refresh:
        served.update(stat_refresh)
    batches = [Batch(root, real_root, tuple(b)) for b in make_batches(todo, options.max_batches)]
    return Plan(root, real_root, batches, report)


def make_batches(items: list, max_batches: int, min_batch: int = 1) -> list[list]:
    """Split ``items`` into at most ``max_batches`` contiguous, near-equal batches (never an empty one).

    Airflow maps one task per batch: a few big batches, not one task per file."""
    if not items:
        return []
    if max_batches < 1:
        raise ValueError("max_batches must be at least 1")
    n = max(1, min(max_batches, len(items) // max(1, min_batch)))
    size, extra = divmod(len(items), n)
    batches, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        batches.append(items[start:end])
        start = end
    return batches
