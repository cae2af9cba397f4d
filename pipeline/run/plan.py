"""Planning: compare the seed folder with the ledger, decide what each file needs, split the work.

(Over 400 lines on purpose: the stat filter, the hash, moves, the vanish guard and the ingest sequence
are one contract with the ledger, in the order ``make_plan`` applies them.)

For every seed-named file discovery finds, planning ends in one of:

- a refusal (link out of the folder, odd name, too big, unreadable): recorded now, not read;
- ``unchanged``: the ledger settled this file with the same content. The stat fingerprint (size,
  mtime, ctime, inode) is the first filter, as git and rsync use it; when it differs the content hash
  decides, so an unchanged file is never parsed again and rarely even read. A fingerprint taken within
  the source's timestamp granularity of the hash is "racily clean" (git's term: an edit just after the
  hash, in the same tick, keeps size, mtime and ctime) and is hashed again, then recorded with the new
  hash time, so it is trusted from the next run on;
- work: the ``SeedFile`` (with its content hash and ingest sequence) goes into a batch.

The ledger is read in these steps: the fingerprints of the whole folder (doc values only), which settle
every trusted unchanged file; the hash and ingest sequence of files whose stat changed (a rebuild reads
them with the fingerprints); after hashing, the whole entries of refused and vanished files (by id, or
scanned when they are most of the folder); the highest ingest sequence. It is written once the plan is
made: the outcomes settled here, and the refreshed stat of racily clean files.

Files the ledger knows that are gone become ``deleted`` outcomes, unless a large share of the folder
vanished at once (``RunOptions.vanish_guard``): then the run stops before deleting anything (the folder is
more likely unmounted or half-copied than emptied on purpose).

**Moves.** A file is gone only when its content is gone: a known file missing from its path whose
content hash (``Source.hash`` computes it for every new path; for an object store, for every new key
of a vanished object's size: ``must_hash``; the ledger holds the vanished file's)
reappears at a path where it is new is *moved*, and does not count for the guard (archiving most of a
folder into ``2025/`` is not an unmount). Moved and edited is a new content: the old one is gone and
counts. The old path's entry ends ``deleted`` (``moved: its content is now at ...``), listing its article
as an orphan; the new path is processed with the content's own ingest sequence (the highest of its
vanished copies) and settles ``indexed`` with the same ``doc_id`` and ``seq``, so when ``finalize``
sweeps the orphan a file carries it and nothing is removed. The document is sent again with the *same*
version (``external_gte`` accepts it), so the article is replaced in place, never missing from the index,
its ``seed.path`` follows the file and its version stays. Not a newer sequence: a renamed copy would then
win over a copy ingested later. Not the ledger alone: the index would name a path that no longer exists
(and a concurrent run's conflict check compares ``seed.path``). The price is one parse and write of each
moved file, once.

**Unreadable folders.** A folder the walk cannot list (``cannot read folder``, quarantined under its own
path) hides its files; they are not gone. The ledger's files under it keep their entries and articles
(no ``deleted`` outcome, not counted for the guard); a warning, a report note and
``RunReport.unreadable_folders`` name it.

**Ingest sequence.** Content the pipeline has not seen before gets a sequence number above every number
in the ledger; content it has seen keeps its number. The number is the document's external version, so
between two files carrying one article the copy ingested last wins, an edit always wins over the state
it replaces (whatever the file's mtime says: ``cp -p``, ``rsync -t`` and tar restore old mtimes), and
the winner is the same after a full rebuild. Files first seen in the same run are numbered in order of
modification time, then path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.policy import SETTLED
from pipeline.run import heap
from pipeline.run.options import RunOptions, VanishGuard
from pipeline.run.outcomes import settle
from pipeline.run.report import RunReport
from pipeline.sources import Source, open_source
from pipeline.sources.folder import UNREADABLE_FOLDER
from pipeline.stores.ledger import Fingerprint, Ledger, LedgerEntry
from pipeline.types import SeedFile, SeedOutcome, display_path

log = logging.getLogger("seednews")

SEQ_SHIFT = 20  # sequence = milliseconds << 20 | position: a million new files per millisecond before it carries
SHOWN_FOLDERS = 10  # unreadable folders named in the report note
REFRESHED = ("size", "mtime_ns", "ctime_ns", "ino", "hashed_ns")  # a racily clean file's stat, hashed again


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


@dataclass(frozen=True)
class Policy:
    """Which files of unchanged content this run leaves alone, read from its options."""

    rebuild: bool  # every file is compared by hash and processed again (an unchanged one keeps its sequence)
    skip_unchanged: bool  # a settled file of unchanged content is ``unchanged``
    replay: bool  # a dead letter of unchanged content is replayed by finalize, which gives its outcome
    max_bytes: int

    @classmethod
    def of(cls, options: RunOptions, writes_ledger: bool) -> Policy:
        rebuild = options.full_rebuild
        skip = options.skip_unchanged and not rebuild and writes_ledger
        return cls(rebuild, skip, options.replay_dead_letters and not rebuild, options.parse.max_bytes)

    def replays(self, state: str) -> bool:
        return self.replay and state == "dead_letter"

    def keeps(self, state: str) -> bool:
        """Unchanged content in ``state`` needs no work in this run."""
        return (self.skip_unchanged and state in SETTLED) or self.replays(state)

    def unchanged(self, seed: SeedFile, state: str) -> list[SeedOutcome]:
        """The outcome of a kept file: ``unchanged``, or none for a replayed dead letter."""
        return [] if self.replays(state) else [SeedOutcome(seed, "unchanged")]


@dataclass
class Listing:
    """The source's listing after the stat filter."""

    seen: set[str]  # every key listed
    files: list[SeedFile]  # new, or not trusted unchanged by their stat: to hash
    refusals: list[SeedOutcome]  # refused by discovery
    unchanged: list[SeedOutcome]  # trusted unchanged by their stat alone

    @property
    def unreadable(self) -> list[str]:
        """Folders the walk could not list (``""``: the seed folder itself)."""
        return [
            display_path(o.seed.rel)
            for o in self.refusals
            if o.stage == "discover" and (o.reason or "").startswith(UNREADABLE_FOLDER)
        ]


def filter_by_stat(
    walk: Iterable[SeedFile | SeedOutcome], known: dict[str, Fingerprint], policy: Policy, window: int | None
) -> Listing:
    """Sort the listing on the fingerprints alone: files whose stat the ledger trusts and whose state
    ``policy`` keeps need no reading."""
    listing = Listing(set(), [], [], [])
    for item in walk:
        if isinstance(item, SeedOutcome):
            listing.seen.add(item.seed.key)
            listing.refusals.append(item)
            continue
        listing.seen.add(item.key)
        fp = known.get(item.key)
        if fp is not None and fp.trusts_stat(item, window) and policy.keeps(fp.state):
            listing.unchanged += policy.unchanged(item, fp.state)
        else:
            listing.files.append(item)
    return listing


@dataclass
class Hashed:
    """The listed files after hashing."""

    todo: list[SeedFile]  # to process (with its ingest sequence when the content is known)
    unchanged: list[SeedOutcome]
    refused: list[SeedOutcome]  # unreadable while being hashed
    stat_refresh: dict[str, dict[str, int]]  # key -> new stat of a file whose content did not change


def must_hash(seed: SeedFile, prev: Fingerprint | None, policy: Policy, vanished_sizes: frozenset[int]) -> bool:
    """Whether planning must read an entry of a source that defers its hashes (``Source.deferred_hash``):
    only when its content may be one the ledger knows under another fingerprint, so the content hash
    decides here: the size of its path's kept content (the same bytes uploaded again are ``unchanged``),
    or of a vanished entry's (the content may have moved here)."""
    return seed.size in vanished_sizes or (prev is not None and prev.size == seed.size and policy.keeps(prev.state))


def hash_files(
    source: Source,
    files: list[SeedFile],
    known: dict[str, Fingerprint],
    policy: Policy,
    vanished_sizes: frozenset[int] = frozenset(),
) -> Hashed:
    """Hash ``files`` (or only those ``must_hash`` names, for a source that defers hashes: the rest go to
    the worker unhashed, and keep their path's sequence when their size and fingerprint are the known
    ones) and compare each with what the ledger knows of its path."""
    out = Hashed([], [], [], {})
    deferred = source.deferred_hash
    for seed in files:
        prev = known.get(seed.key)
        look = source.admit if deferred and not must_hash(seed, prev, policy, vanished_sizes) else source.hash
        hashed = look(seed, policy.max_bytes)
        if isinstance(hashed, SeedOutcome):
            out.refused.append(hashed)
            continue
        if prev is not None and prev.sha256 and prev.sha256 == hashed.sha256:
            if policy.keeps(prev.state):
                out.unchanged += policy.unchanged(hashed, prev.state)
                out.stat_refresh[seed.key] = {f: getattr(hashed, f) for f in REFRESHED}
                continue
            hashed = replace(hashed, seq=prev.seq)  # seen before: keeps its place in the order
        elif prev is not None and not hashed.sha256 and (prev.size, prev.ino) == (hashed.size, hashed.ino):
            hashed = replace(hashed, seq=prev.seq)  # the same object (size and ETag): its place in the order
        out.todo.append(hashed)
    return out


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


def judge_refusals(refusals: list[SeedOutcome], entries: dict[str, LedgerEntry], policy: Policy) -> list[SeedOutcome]:
    """A refusal the ledger already holds for the same stat is ``unchanged``; the others stand."""
    return [
        SeedOutcome(o.seed, "unchanged") if policy.skip_unchanged and _same_refusal(entries.get(o.seed.key), o) else o
        for o in refusals
    ]


def fill_content(served: Ledger, root: str, known: dict[str, Fingerprint], keys: list[str]) -> None:
    """Fill in hash and ingest sequence of ``keys`` in ``known``: from their whole entries, or from a
    second read of the folder's fingerprints when they are most of it."""
    if not keys:
        return
    if len(keys) > len(known) // 2:
        known.update(served.fingerprints(root, content=True))
        return
    for key, e in served.lookup(keys).items():
        known[key] = known[key]._replace(sha256=e.sha256, seq=e.seq)


def whole_entries(served: Ledger | None, root: str, keys: list[str], known: int) -> dict[str, LedgerEntry]:
    """Whole ledger entries for ``keys``: looked up by id, or one scan of the folder when they are most
    of it (a mass deletion the guard was told to allow)."""
    if served is None or not keys:
        return {}
    if len(keys) > known // 2:
        wanted = set(keys)
        return {k: e for k, e in served.entries_for_root(root).items() if k in wanted}
    return served.lookup(keys)


def split_unreadable(vanished: list[LedgerEntry], folders: list[str]) -> tuple[list[LedgerEntry], list[LedgerEntry]]:
    """``vanished`` in two: the files really missing, and those under a folder the walk could not read
    (``""``: the seed folder itself), which are not known to be gone."""
    if not folders:
        return vanished, []
    prefixes = tuple(f"{f}/" for f in folders if f)
    everything = "" in folders

    def hidden(e: LedgerEntry) -> bool:
        return everything or e.path.startswith(prefixes)

    return [e for e in vanished if not hidden(e)], [e for e in vanished if hidden(e)]


@dataclass(frozen=True)
class Moves:
    """Vanished content that reappears in this listing at a path where it is new."""

    at: dict[str, list[int]]  # content hash -> positions in ``todo`` of the files that now hold it
    seq: dict[str, int]  # content hash -> its ingest sequence: the highest of its vanished copies

    @property
    def files(self) -> int:
        return sum(len(v) for v in self.at.values())


def find_moves(vanished: list[LedgerEntry], todo: list[SeedFile]) -> Moves:
    """Match vanished entries and files new at their path by content hash (sha256)."""
    seqs: dict[str, int] = {}
    for e in vanished:
        if e.sha256:
            seqs[e.sha256] = max(seqs.get(e.sha256, 0), e.seq)
    at: dict[str, list[int]] = {}
    for i, s in enumerate(todo):
        if not s.seq and s.sha256 in seqs:  # new at this path (known content keeps its own number already)
            at.setdefault(s.sha256, []).append(i)
    return Moves(at, seqs)


def check_gone(guard: VanishGuard, vanished: list[LedgerEntry], moves: Moves, live: int, root: str) -> None:
    """The vanish guard on the files whose content is nowhere in the listing (moved ones only mentioned)."""
    gone = sum(1 for e in vanished if e.sha256 not in moves.at)
    if gone:
        guard.check(gone, live, root, moved=len(vanished) - gone)


def deletions(vanished: list[LedgerEntry], moves: Moves, todo: list[SeedFile], real_root: str) -> list[SeedOutcome]:
    """One ``deleted`` outcome per vanished entry, naming where a moved content went."""
    out = []
    for e in vanished:
        gone = SeedFile(
            e.root, e.path, real_root, e.path, e.size, e.mtime_ns, e.ctime_ns, e.ino, e.sha256, e.seq, e.hashed_ns
        )
        where = moves.at.get(e.sha256)
        why = f"moved: its content is now at {display_path(todo[where[0]].rel)}" if where else "the file is gone"
        out.append(SeedOutcome(gone, "deleted", "plan", why, e.doc_id))
    return out


def number(todo: list[SeedFile], moves: Moves, base: int) -> None:
    """Give every file in ``todo`` its ingest sequence, in place (one ``SeedFile`` per file alive at a
    time, not two): a moved content keeps its own, new content is numbered from ``base`` in order of
    modification time, then path."""
    for sha, where in moves.at.items():
        if moves.seq[sha]:
            for i in where:
                todo[i] = replace(todo[i], seq=moves.seq[sha])
    fresh = sorted((i for i, s in enumerate(todo) if not s.seq), key=lambda i: (todo[i].mtime_ns, todo[i].rel))
    for rank, i in enumerate(fresh):
        todo[i] = replace(todo[i], seq=base + rank)


def plan_report(options: RunOptions, target: str, unreadable: list[str], hidden: int, moved: int) -> RunReport:
    """The run's report as planning opens it: the unreadable folders and the moves, noted."""
    report = RunReport(dry_run=options.dry_run, target=target, unreadable_folders=len(unreadable))
    if unreadable:
        more = " …" if len(unreadable) > SHOWN_FOLDERS else ""
        shown = ", ".join(repr(f or ".") for f in unreadable[:SHOWN_FOLDERS]) + more
        report.notes.append(
            f"cannot read folder {shown}: the {hidden} files the ledger knows in it keep their articles "
            "until it can be read again"
        )
    if moved:
        report.notes.append(
            f"{moved} files moved (the content of a file gone from its old path is at a new one): they keep "
            "their articles and ingest sequence"
        )
    return report


def walk_beside(
    source: Source, served: Ledger | None, content: bool
) -> tuple[dict[str, Fingerprint], list[SeedFile | SeedOutcome]]:
    """The ledger's fingerprints of the folder (``Ledger.fingerprints``; with ``content``, hashes and
    sequences too) and the folder's walk, the read in a thread beside the walk: at 100,000 files each
    takes about a second, and about half of the read is waiting for the node.

    The walk starts only once the read holds its snapshot. A file another run adds and records meanwhile
    is then in the walk, or not in the snapshot: never in the snapshot alone, where it would look deleted
    (the order the two had when they ran one after the other). A read that starts again (a lost scroll)
    takes a later snapshot, so the folder is then walked again after it."""
    if served is None:
        return {}, list(source.walk())
    snapshots = 0
    ready = threading.Event()

    def taken() -> None:
        nonlocal snapshots
        snapshots += 1
        ready.set()

    with ThreadPoolExecutor(1, thread_name_prefix="fingerprints") as pool:
        read = pool.submit(served.fingerprints, source.root, content=content, on_snapshot=taken)
        read.add_done_callback(lambda _: ready.set())  # no snapshot: an error, or no ledger index yet
        ready.wait()
        if read.done():
            read.result()  # its error, before the walk
        walked = list(source.walk())
        known = read.result()
    if snapshots > 1:
        log.info("%s: the ledger was read again from the start; walking the folder again", source.root)
        walked = list(source.walk())
    return known, walked


@heap.paused()  # a few hundred thousand objects at 100,000 files, none in a cycle
def make_plan(
    options: RunOptions,
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
    policy = Policy.of(options, writes_ledger=ledger is not None)
    known, walked = walk_beside(source, served, policy.rebuild)
    listing = filter_by_stat(walked, known, policy, source.racy_window_ns)
    unreadable = listing.unreadable
    live = [k for k, f in known.items() if f.state != "deleted"]
    vanished_keys = [k for k in live if k not in listing.seen]
    guarded = bool(vanished_keys) and not options.allow_mass_delete
    if guarded and not unreadable and not listing.files:  # nothing new can be where they went: unmounted?
        options.vanish_guard.check(len(vanished_keys), len(live), root)
    if served is not None and not policy.rebuild:
        fill_content(served, root, known, [s.key for s in listing.files if s.key in known])
    sizes = frozenset(known[k].size for k in vanished_keys) if source.deferred_hash else frozenset()
    hashed = hash_files(source, listing.files, known, policy, sizes)
    refusals = listing.refusals + hashed.refused
    wanted = [o.seed.key for o in refusals if o.seed.key in known] + vanished_keys
    entries = whole_entries(served, root, wanted, len(known))
    vanished, hidden = split_unreadable([entries[k] for k in vanished_keys if k in entries], unreadable)
    moves = find_moves(vanished, hashed.todo)
    if guarded:
        check_gone(options.vanish_guard, vanished, moves, len(live), root)
    deleted = [] if policy.rebuild else deletions(vanished, moves, hashed.todo, real_root)
    number(hashed.todo, moves, seq_base(served))
    report = plan_report(options, target, unreadable, len(hidden), 0 if policy.rebuild else moves.files)
    if unreadable:
        log.warning("%s: %s", root, report.notes[0])
    # a vanished file's stored entry is the truth (names that were not UTF-8 are shown escaped)
    previous = {} if policy.rebuild else entries | {o.seed.key: e for o, e in zip(deleted, vanished, strict=True)}
    outcomes = listing.unchanged + hashed.unchanged + judge_refusals(refusals, entries, policy) + deleted
    settle(outcomes, ledger=ledger, report=report, run_id=options.run_id, target=target, previous=previous)
    if served is not None and hashed.stat_refresh:
        served.update(hashed.stat_refresh)
    split = make_batches(hashed.todo, options.max_batches, options.min_batch_files)
    batches = [Batch(root, real_root, tuple(b)) for b in split]
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
