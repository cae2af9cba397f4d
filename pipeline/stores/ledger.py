"""The ledger of seed files: which file (folder + path), with which content, became what.

(Just over 400 lines on purpose: every read and write of the ledger is here, each read under the read
retry policy of ``pipeline.stores.retry``, so planning and finalize read it one way.)

Kept in OpenSearch because every Airflow worker already reaches it: it survives a wiped worker, needs
no extra service, and analysts read it in Dashboards next to the articles. One entry per file; its id
is ``types.entry_key(root, path)``, so writing an entry again replaces it (idempotent).

The ledger describes the article index the alias serves. ``<base>-ledger`` is an alias too, paired
with the article index: ``<base>-v<stamp>`` has its ledger in ``<base>-ledger-v<stamp>``. A full
rebuild writes a fresh pair, and one atomic alias update moves both, so a rebuild that fails
validation never touches what the served ledger says (``indices.swap_alias``).

States (``types.State``) a person can read:

``indexed``      OpenSearch acknowledged the document built from this content
``quarantined``  the file cannot become a document (stage and reason say why); its last good article,
                 if any, stays in the index (``doc_id``) until the file is fixed or deleted
``duplicate``    another file carries the same article and was ingested later (it wins)
``failed``       a retryable failure (cluster busy, 5xx): the next run tries again
``dead_letter``  OpenSearch refused the document for good (mapping); kept whole in the dead-letter
                 index for replay
``changed``      the file changed between planning and reading; the next run takes the new content
``deleted``      the file is gone; its article left the index unless another file still carries it
``internal_error`` a bug (ours or a library's) met this file (``pipeline.run.seedpath``); its last good
                 article stays, the run failed at its end, and the next run tries the file again

``seq`` is the ingest sequence of the entry's content: new or edited content gets a number higher than
any before it, and that number is the document's version, so the copy ingested last wins whatever its
mtime. ``orphans`` lists articles this file used to carry and no longer does: ``finalize`` decides their
fate (delete, keep, or promote another carrier) and clears the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from pipeline.config import Settings
from pipeline.errors import LedgerError
from pipeline.policy import CARRYING
from pipeline.stores.indices import load_template
from pipeline.stores.retry import read, read_scroll
from pipeline.times import utc_now
from pipeline.types import SeedFile, Stage, State, display_path, entry_key

LEDGER_TEMPLATE = "ledger.template.json"
MGET_CHUNK = 1000
BULK_ENTRIES = 5000  # entries per bulk request (about 2 MB): a run's chunk of files is one request
PAGE = 10_000  # the index's max_result_window: a 10,000-file folder is one request
SCAN_FILTER = "hits.hits._id,hits.hits._source,hits.hits.sort"
FINGERPRINT_FILTER = "_scroll_id,_shards,hits.hits.fields"  # what helpers.scan reads, and the values


def same_stat(known: LedgerEntry | Fingerprint, seed: SeedFile) -> bool:
    """The cheap change filter (as git and rsync do): same size, mtime, ctime and inode."""
    return bool(known.mtime_ns) and (known.size, known.mtime_ns, known.ctime_ns, known.ino) == (
        seed.size,
        seed.mtime_ns,
        seed.ctime_ns,
        seed.ino,
    )


def racy(known: LedgerEntry | Fingerprint, window_ns: int) -> bool:
    """Git's "racily clean" rule: the fingerprint was taken so close to the hash that an edit made just
    after the hash, within the same timestamp tick, would leave size, mtime and ctime as they were. Such
    an entry proves nothing; neither does one hashed before ``hashed_ns`` was recorded."""
    return not known.hashed_ns or max(known.mtime_ns, known.ctime_ns) >= known.hashed_ns - window_ns


def trusts_stat(known: LedgerEntry | Fingerprint, seed: SeedFile, racy_window_ns: int | None) -> bool:
    """``seed`` is the content ``known`` hashed, without reading it: the same stat fingerprint, not racily
    clean. ``racy_window_ns`` is the source's timestamp granularity (``None``: its fingerprint changes
    with the content, as an S3 ETag does, so it cannot be racy)."""
    return same_stat(known, seed) and (racy_window_ns is None or not racy(known, racy_window_ns))


class Fingerprint(NamedTuple):
    """The part of an entry planning compares with every file (``Ledger.fingerprints``): its state, the
    stat fingerprint, and the content hash and ingest sequence (a rebuild keeps an unchanged file's place
    in the ingest order from these, without reading whole entries)."""

    state: State
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    hashed_ns: int
    sha256: str
    seq: int

    def trusts_stat(self, seed: SeedFile, racy_window_ns: int | None) -> bool:
        return trusts_stat(self, seed, racy_window_ns)


_FP_DEFAULTS: dict[str, Any] = dict(
    state="indexed", size=0, mtime_ns=0, ctime_ns=0, ino=0, hashed_ns=0, sha256="", seq=0
)


@dataclass(frozen=True)
class LedgerEntry:
    root: str
    path: str  # relative to root, as people see it (undecodable bytes escaped); the id uses the raw bytes
    state: State
    sha256: str = ""
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0
    seq: int = 0
    hashed_ns: int = 0  # when the content behind this fingerprint was last hashed (SeedFile.hashed_ns)
    stage: Stage | None = None
    reason: str | None = None
    doc_id: str | None = None
    orphans: list[str] = field(default_factory=list)
    target: str | None = None
    run_id: str | None = None
    attempts: int = 1
    updated_at: str | None = None
    key: str = ""

    def same_stat(self, seed: SeedFile) -> bool:
        return same_stat(self, seed)

    def trusts_stat(self, seed: SeedFile, racy_window_ns: int | None) -> bool:
        return trusts_stat(self, seed, racy_window_ns)

    @classmethod
    def from_source(cls, src: dict[str, Any]) -> LedgerEntry:
        data = {k: v for k, v in src.items() if k in _FIELDS}
        data.setdefault("state", "indexed")
        data["orphans"] = list(data.get("orphans") or [])
        for name in _NUMBERS:
            data[name] = int(data.get(name) or 0)
        return cls(**data)


_FIELDS: frozenset[str] = frozenset(f.name for f in fields(LedgerEntry))
_FIELD_ORDER: tuple[str, ...] = tuple(f.name for f in fields(LedgerEntry))


def _as_source(e: LedgerEntry) -> dict[str, Any]:
    """``dataclasses.asdict`` without its recursive deep copy (the values are serialized at once)."""
    return {name: getattr(e, name) for name in _FIELD_ORDER}


_NUMBERS: tuple[str, ...] = ("size", "mtime_ns", "ctime_ns", "ino", "seq", "hashed_ns")


def entry_for(seed: SeedFile, state: State, **kw: Any) -> LedgerEntry:
    return LedgerEntry(
        root=seed.root,
        path=display_path(seed.rel),
        state=state,
        sha256=seed.sha256,
        size=seed.size,
        mtime_ns=seed.mtime_ns,
        ctime_ns=seed.ctime_ns,
        ino=seed.ino,
        seq=seed.seq,
        hashed_ns=seed.hashed_ns,
        key=seed.key,
        **kw,
    )


class Ledger:
    """One ledger index (or the ledger alias). ``client`` is an ``opensearchpy.OpenSearch``."""

    def __init__(self, client, index: str) -> None:
        self.client = client
        self.index = index

    # ------------------------------------------------------------------ reads
    def _read(self, what: str, fn, /, **kwargs: Any) -> Any:
        """``fn(**kwargs)``, retried on transient cluster errors (``stores.retry``); ``what`` for the log."""
        return read(self.client, f"ledger {self.index}: {what}", fn, **kwargs)

    def exists(self) -> bool:
        return bool(self._read("exists", self.client.indices.exists, index=self.index))

    def lookup(self, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        """Entries for ``keys`` (``types.entry_key``) that exist."""
        keys = list(keys)
        found: dict[str, LedgerEntry] = {}
        if not keys or not self.exists():
            return found
        for i in range(0, len(keys), MGET_CHUNK):
            res = self._read("lookup", self.client.mget, index=self.index, body={"ids": keys[i : i + MGET_CHUNK]})
            for doc in res["docs"]:
                if doc.get("found"):
                    found[doc["_id"]] = LedgerEntry.from_source({**doc["_source"], "key": doc["_id"]})
        return found

    def _scan(self, query: dict[str, Any], page: int = PAGE) -> Iterator[LedgerEntry]:
        """Every entry matching ``query``, paged with search_after on the ``key`` field (no total
        counted, only what is read kept in the response). A page that fails transiently is asked again
        (after the same sort key), so nothing is read twice or missed."""
        if not self.exists():
            return
        after = None
        while True:
            body: dict[str, Any] = {"size": page, "query": query, "sort": [{"key": "asc"}], "track_total_hits": False}
            if after:
                body["search_after"] = after
            res = self._read("scan", self.client.search, index=self.index, body=body, filter_path=SCAN_FILTER)
            hits = res.get("hits", {}).get("hits", [])  # an empty page has no hits at all once filtered
            for h in hits:
                yield LedgerEntry.from_source({**h["_source"], "key": h["_id"]})
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    def fingerprints(
        self,
        root: str,
        content: bool = False,
        page: int = PAGE,
        on_snapshot: Callable[[], None] | None = None,
    ) -> dict[str, Fingerprint]:
        """What planning compares for every entry of one seed folder, by key: state and stat fingerprint
        (and with ``content`` the hash and ingest sequence; else ``""`` and 0), read from doc values (no
        stored field is loaded, so no ``_source`` is decompressed or sent). The few files this does not
        settle are then looked up whole (``lookup``).

        Read with a scroll in index order: paging with ``search_after`` sorted by key made the node sort
        the folder once per page (0.8 of 1.7 s for 100,000 entries; this takes 1.0 s, hash and sequence
        not asked). The scroll pins the shard copy and segments it reads, so no entry is seen twice or
        missed while others are written. A scroll that fails transiently or loses its context (its node
        restarted) is read again from the beginning into a fresh result (``retry.read_scroll``).

        ``on_snapshot`` is called each time a read has taken its snapshot (the scroll's first page is in,
        or it found nothing), before the rest is read: a caller may work beside the read from then on
        (``pipeline.run.plan.walk_beside``); a second call means the read started again, later."""
        from opensearchpy import helpers

        self.refresh()
        if not self.exists():
            return {}
        names = Fingerprint._fields if content else Fingerprint._fields[:-2]
        snapshot_taken = on_snapshot or (lambda: None)
        query = {"query": {"term": {"root": root}}, "stored_fields": "_none_", "docvalue_fields": [*names, "key"]}

        def read_all() -> dict[str, Fingerprint]:
            out: dict[str, Fingerprint] = {}
            told = False
            for h in helpers.scan(
                self.client, index=self.index, query=query, size=page, scroll="5m", filter_path=FINGERPRINT_FILTER
            ):
                if not told:
                    snapshot_taken()
                    told = True
                f = h["fields"]
                out[f["key"][0]] = Fingerprint(
                    *(v[0] if (v := f.get(name)) else _FP_DEFAULTS[name] for name in Fingerprint._fields)
                )
            if not told:  # nothing to read: the search that found nothing was the snapshot
                snapshot_taken()
            return out

        return read_scroll(self.client, f"ledger {self.index}: fingerprints of {root}", read_all)

    def entries_for_root(self, root: str) -> dict[str, LedgerEntry]:
        """Every entry of one seed folder, by key (planning compares the folder against it)."""
        self.refresh()
        return {e.key: e for e in self._scan({"term": {"root": root}})}

    def carriers(self, doc_ids: Iterable[str]) -> dict[str, list[LedgerEntry]]:
        """For each article id, the entries (any folder) that still carry it."""
        ids = sorted(set(doc_ids))
        out: dict[str, list[LedgerEntry]] = {i: [] for i in ids}
        for i in range(0, len(ids), MGET_CHUNK):
            query = {
                "bool": {
                    "filter": [{"terms": {"doc_id": ids[i : i + MGET_CHUNK]}}, {"terms": {"state": sorted(CARRYING)}}]
                }
            }
            for e in self._scan(query):
                out[e.doc_id].append(e)  # type: ignore[index]
        return out

    def indexed_by_run(self, run_id: str) -> set[str]:
        """The articles run ``run_id`` indexed (the ``doc_id`` of its ``indexed`` entries), read from doc
        values: what linking after the run starts from (``pipeline.run.linking``)."""
        from opensearchpy import helpers

        self.refresh()
        if not self.exists():
            return set()
        query = {
            "query": {"bool": {"filter": [{"term": {"run_id": run_id}}, {"term": {"state": "indexed"}}]}},
            "stored_fields": "_none_",
            "docvalue_fields": ["doc_id"],
        }

        def read_all() -> set[str]:
            hits = helpers.scan(self.client, index=self.index, query=query, size=PAGE, scroll="5m")
            return {v[0] for h in hits if (v := h.get("fields", {}).get("doc_id"))}

        return read_scroll(self.client, f"ledger {self.index}: articles of run {run_id}", read_all)

    def with_orphans(self) -> list[LedgerEntry]:
        self.refresh()
        return list(self._scan({"exists": {"field": "orphans"}}))

    def doubly_indexed(self, limit: int = 10_000) -> dict[str, list[LedgerEntry]]:
        """Articles that more than one entry says it indexed (parallel batches wrote copies of one
        article; the one with the highest ``seq`` is what the index holds). Exact: one shard."""
        self.refresh()
        res = self._read(
            "doubly indexed",
            self.client.search,
            index=self.index,
            body={
                "size": 0,
                "query": {"term": {"state": "indexed"}},
                "aggs": {"d": {"terms": {"field": "doc_id", "min_doc_count": 2, "size": limit}}},
            },
        )
        ids = [b["key"] for b in res["aggregations"]["d"]["buckets"]]
        out: dict[str, list[LedgerEntry]] = {}
        for i in range(0, len(ids), MGET_CHUNK):
            query = {
                "bool": {"filter": [{"terms": {"doc_id": ids[i : i + MGET_CHUNK]}}, {"term": {"state": "indexed"}}]}
            }
            for e in self._scan(query):
                out.setdefault(e.doc_id, []).append(e)  # type: ignore[arg-type]
        return out

    def max_seq(self) -> int:
        if not self.exists():
            return 0
        res = self._read(
            "max seq", self.client.search, index=self.index, body={"size": 0, "aggs": {"m": {"max": {"field": "seq"}}}}
        )
        value = res["aggregations"]["m"]["value"]
        return int(value) if value is not None else 0

    def counts(self, root: str | None = None) -> dict[State, int]:
        """Entries per state (for reports)."""
        if not self.exists():
            return {}
        self.refresh()
        query = {"term": {"root": root}} if root else {"match_all": {}}
        res = self._read(
            "counts",
            self.client.search,
            index=self.index,
            body={"size": 0, "query": query, "aggs": {"s": {"terms": {"field": "state", "size": 20}}}},
        )
        return {b["key"]: b["doc_count"] for b in res["aggregations"]["s"]["buckets"]}

    def count_state(self, state: State) -> int:
        """Exact number of entries in ``state`` (the ``count`` API, not an approximate aggregation)."""
        if not self.exists():
            return 0
        self.refresh()
        body = {"query": {"term": {"state": state}}}
        return int(self._read("count", self.client.count, index=self.index, body=body)["count"])

    def refresh(self) -> None:
        if self.exists():
            self._read("refresh", self.client.indices.refresh, index=self.index)

    # ------------------------------------------------------------------ writes
    def record(self, entries: Iterable[LedgerEntry]) -> int:
        """Write entries, each whole with the ``index`` op (it replaces the stored entry without the
        node reading it first, as an ``update`` would). Raises ``LedgerError`` if OpenSearch refuses any."""
        now = utc_now()
        actions = [
            {
                "_op_type": "index",
                "_index": self.index,
                "_id": e.key or entry_key(e.root, e.path),
                "_source": {**_as_source(e), "key": e.key or entry_key(e.root, e.path), "updated_at": now},
            }
            for e in entries
        ]
        return self._bulk(actions)

    def update(self, changes: dict[str, dict[str, Any]]) -> int:
        """Partial updates by key (stat refresh, orphans cleared, duplicates demoted)."""
        actions = [{"_op_type": "update", "_index": self.index, "_id": key, "doc": doc} for key, doc in changes.items()]
        return self._bulk(actions)

    def _bulk(self, actions: list[dict[str, Any]]) -> int:
        from opensearchpy import helpers

        if not actions:
            return 0
        ok, errors = helpers.bulk(self.client, actions, chunk_size=BULK_ENTRIES, raise_on_error=False, max_retries=5)
        if errors:
            first = next(iter(errors[0].values()), {}) if isinstance(errors[0], dict) else errors[0]
            raise LedgerError(f"ledger {self.index}: {len(errors)} entries not written (first: {str(first)[:300]})")
        return ok


# ----------------------------------------------------------------------------- the index behind the alias
def paired_name(article_index: str, base: str, ledger_alias: str) -> str:
    """``<base>-v<stamp>`` -> ``<ledger_alias>-v<stamp>``."""
    prefix = f"{base}-v"
    if not article_index.startswith(prefix):
        raise ValueError(f"{article_index!r} is not an article index of {base!r}")
    return f"{ledger_alias}-v{article_index[len(prefix) :]}"


def ensure_template(client, ledger_alias: str) -> None:
    client.indices.put_index_template(name=ledger_alias, body=load_template(LEDGER_TEMPLATE, f"{ledger_alias}-v*"))


def create_paired(client, ledger_alias: str, name: str) -> None:
    ensure_template(client, ledger_alias)
    if not client.indices.exists(index=name):
        try:
            client.indices.create(index=name)
        except Exception:
            if not client.indices.exists(index=name):  # lost a creation race: fine
                raise


def add_missing_fields(client, index: str) -> None:
    """Map the template's fields that ``index`` (a ledger, or its alias) lacks; its mapping is strict, so
    an entry naming one would be refused. A field it has keeps its mapping: a ledger created from an
    earlier template (every field indexed, ``reason`` analysed) keeps it until a full rebuild pairs the
    served index with a ledger made from this one."""
    wanted = load_template(LEDGER_TEMPLATE)["template"]["mappings"]["properties"]
    have = {f for m in client.indices.get_mapping(index=index).values() for f in m["mappings"].get("properties", {})}
    if missing := {name: spec for name, spec in wanted.items() if name not in have}:
        client.indices.put_mapping(index=index, body={"properties": missing})


def ensure_alias(client, ledger_alias: str, paired: str) -> None:
    """Make ``ledger_alias`` an alias of the ledger paired with the served article index.

    A ledger from before pairing (a concrete index named like the alias) is copied into the paired
    index and replaced by the alias, once. Fields added to the template since the served ledger was
    created are added to it (``add_missing_fields``)."""
    if client.indices.exists_alias(name=ledger_alias):
        add_missing_fields(client, ledger_alias)
        return
    create_paired(client, ledger_alias, paired)
    try:
        if client.indices.exists(index=ledger_alias) and not client.indices.exists_alias(name=ledger_alias):
            # a legacy concrete ledger: copy it into the paired index, then let the alias take its name
            add_missing_fields(client, ledger_alias)
            client.reindex(
                body={"source": {"index": ledger_alias}, "dest": {"index": paired}},
                refresh=True,
                wait_for_completion=True,
            )
            client.indices.delete(index=ledger_alias)
    except Exception:
        if not client.indices.exists_alias(name=ledger_alias):  # a concurrent run migrated it: fine
            raise
        return
    try:
        client.indices.update_aliases(
            body={"actions": [{"add": {"index": paired, "alias": ledger_alias, "is_write_index": True}}]}
        )
    except Exception:
        if not client.indices.exists_alias(name=ledger_alias):  # another run added it first: fine
            raise


def ledger_for(client, settings: Settings, target: str) -> Ledger:
    """The ledger a run writes: the served one (through its alias) or a rebuild's own."""
    if target == settings.alias:
        return Ledger(client, settings.ledger_index)
    return Ledger(client, paired_name(target, settings.index_base, settings.ledger_index))
