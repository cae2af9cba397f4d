"""Reading objects once, concurrently, without a server (a stand-in client over a dict): planning downloads
an object only when its content hash must decide there, the read threads GET each planned object once,
in order, several at a time, and the content hash comes from the bytes of that one read. The same rules
against a real server and node: tests/test_s3_live.py."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pipeline.run import parallel
from pipeline.run.options import RunOptions
from pipeline.run.plan import Policy, hash_files, must_hash
from pipeline.run.seedpath import fetch_all
from pipeline.run.tuning import Tuning
from pipeline.sources import Sources
from pipeline.sources.s3 import S3Source, etag_fingerprint, parse_url
from pipeline.stores.ledger import Fingerprint
from pipeline.types import SeedFile, SeedOutcome, State

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/{url}"\n---\n'
WHEN = datetime(2026, 1, 2, tzinfo=UTC)
URL = "s3://seeds-bucket/drop"
GET_SECONDS = 0.02  # each GET waits this long, as a round trip does: concurrency shows in the wall


class CountingS3:
    """List and ranged GET over a dict of objects; counts GETs per key and the most in flight at once."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.gets: Counter[str] = Counter()
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def etag(self, key: str) -> str:
        return '"' + hashlib.md5(self.objects[key]).hexdigest() + '"'

    def get_paginator(self, _: str) -> CountingS3:
        return self

    def paginate(self, Bucket: str, Prefix: str, PaginationConfig: dict) -> list[dict]:
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        contents = [{"Key": k, "Size": len(self.objects[k]), "LastModified": WHEN, "ETag": self.etag(k)} for k in keys]
        return [{"Contents": contents}]

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict:
        with self._lock:
            self.gets[Key] += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(GET_SECONDS)
        with self._lock:
            self.in_flight -= 1
        data = self.objects[Key]
        return {
            "Body": io.BytesIO(data),
            "ETag": self.etag(Key),
            "ContentRange": f"bytes 0-{len(data) - 1}/{len(data)}",
            "LastModified": WHEN,
        }


def objects(n: int) -> dict[str, bytes]:
    return {f"drop/{i:03}.txt": SEED.format(title="t" * (i + 1), url=i).encode() for i in range(n)}  # sizes differ


def listed(s3: CountingS3) -> tuple[S3Source, list[SeedFile]]:
    source = S3Source(parse_url(URL), s3)
    return source, [s for s in source.walk() if isinstance(s, SeedFile)]


def known_as(seed: SeedFile, data: bytes, state: State = "indexed", seq: int = 7) -> Fingerprint:
    sha = hashlib.sha256(data).hexdigest()
    return Fingerprint(state, seed.size, seed.mtime_ns, 0, seed.ino, 1, sha, seq)


POLICY = Policy(rebuild=False, skip_unchanged=True, replay=False, max_bytes=1 << 20)


def test_planning_downloads_no_new_object():
    s3 = CountingS3(objects(30))
    source, seeds = listed(s3)
    hashed = hash_files(source, seeds, {}, POLICY)
    assert len(hashed.todo) == 30 and not s3.gets  # a first run: the worker's read is the only one
    assert all(s.sha256 == "" and s.seq == 0 for s in hashed.todo)


def test_planning_hashes_only_where_the_content_hash_must_decide():
    s3 = CountingS3(objects(4))
    source, seeds = listed(s3)
    same, other, moved_here, rewritten = seeds
    known = {
        # the same bytes under another fingerprint (a multipart re-upload): the hash says unchanged
        same.key: known_as(same, s3.objects["drop/000.txt"])._replace(ino=1, mtime_ns=2),
        # another size at this path: an edit, read by the worker only
        other.key: known_as(other, b"older and longer content")._replace(size=other.size + 5, ino=1),
        # the same size and ETag as known, in a state the run does not keep: its place in the order is kept
        rewritten.key: known_as(rewritten, s3.objects["drop/003.txt"], state="failed", seq=42)._replace(mtime_ns=3),
    }
    vanished_sizes = frozenset({moved_here.size})  # a vanished entry of this size: it may have moved here
    assert must_hash(same, known[same.key], POLICY, frozenset())
    assert not must_hash(other, known[other.key], POLICY, frozenset())
    assert must_hash(moved_here, None, POLICY, vanished_sizes)
    hashed = hash_files(source, seeds, known, POLICY, vanished_sizes)
    assert dict(s3.gets) == {"drop/000.txt": 1, "drop/002.txt": 1}
    assert [o.state for o in hashed.unchanged] == ["unchanged"] and hashed.unchanged[0].seed.rel == "000.txt"
    by_rel = {s.rel: s for s in hashed.todo}
    assert by_rel["001.txt"].sha256 == "" and by_rel["001.txt"].seq == 0
    assert by_rel["002.txt"].sha256 == hashlib.sha256(s3.objects["drop/002.txt"]).hexdigest()
    assert by_rel["003.txt"].sha256 == "" and by_rel["003.txt"].seq == 42


def test_an_object_over_the_limit_is_refused_from_the_listing_without_a_download():
    s3 = CountingS3({"drop/big.txt": b"x" * 5000})
    source, seeds = listed(s3)
    hashed = hash_files(source, seeds, {}, Policy(False, True, False, max_bytes=1000))
    assert [o.state for o in hashed.refused] == ["quarantined"] and "over the" in (hashed.refused[0].reason or "")
    assert not s3.gets


def test_the_read_threads_get_each_object_once_in_order_with_its_content_hash():
    s3 = CountingS3(objects(40))
    _, seeds = listed(s3)
    s3.objects["drop/005.txt"] = b"replaced after the listing"  # its ETag is not the planned one any more
    with ThreadPoolExecutor(8) as pool:
        t0 = time.perf_counter()
        got = fetch_all(seeds, Sources(s3), 1 << 20, pool)
        wall = time.perf_counter() - t0
    assert Counter(s3.gets.values()) == {1: 40}
    assert s3.most_in_flight > 1 and wall < 40 * GET_SECONDS / 2  # several at once, not one after another
    assert isinstance(got[5], SeedOutcome) and got[5].state == "changed"
    assert "ETag" in (got[5].reason or "")
    for seed, item in zip(seeds, got, strict=True):
        if seed.rel == "005.txt":
            continue
        assert isinstance(item, tuple)
        read, data = item
        assert read.rel == seed.rel and data == s3.objects[f"drop/{seed.rel}"]
        assert read.sha256 == hashlib.sha256(data).hexdigest() and read.ino == etag_fingerprint(
            s3.etag(f"drop/{seed.rel}")
        )


def test_a_planned_hash_is_checked_against_the_bytes_read():
    s3 = CountingS3(objects(1))
    source, (seed,) = listed(s3)
    planned = source.hash(seed, 1 << 20)
    assert isinstance(planned, SeedFile) and planned.sha256
    wrong = SeedFile(seed.root, seed.rel, seed.real_root, seed.source, seed.size, seed.mtime_ns, 0, seed.ino, "0" * 64)
    with ThreadPoolExecutor(2) as pool:
        ok, bad = fetch_all([planned, wrong], Sources(s3), 1 << 20, pool)
    assert isinstance(ok, tuple) and ok[0].sha256 == planned.sha256
    assert isinstance(bad, SeedOutcome) and bad.reason == "changed since it was planned: its content is different"


def test_the_chunk_builder_reads_objects_in_threads_and_parses_in_worker_processes():
    s3 = CountingS3(objects(12))
    _, seeds = listed(s3)
    options = RunOptions(seed_dir=URL, check_images=False, tuning=Tuning(read_threads=4))
    with parallel.ChunkBuilder(options, workers=2, s3_client=s3) as builder:
        parts = [builder.submit(seeds[:6]), builder.submit(seeds[6:])]
        built = [p.result() for p in parts]
    assert Counter(s3.gets.values()) == {1: 12} and s3.most_in_flight > 1
    docs = [d for b in built for d in b.docs]
    assert [d.seed.rel for d in docs] == [s.rel for s in seeds]  # in order, every one a document
    assert all(d.seed.sha256 == hashlib.sha256(s3.objects[f"drop/{d.seed.rel}"]).hexdigest() for d in docs)
