"""Seeds from object storage, end to end, against a REAL S3-compatible server on loopback
(``devtools.s3server``: SeaweedFS) and the real OpenSearch test node: the same ledger semantics,
safety and outcomes as a folder. Downloads are counted with a botocore event hook on the client the
run is given, so "not downloaded" is checked, not assumed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import unicodedata
import uuid
from collections import Counter

import pytest

pytest.importorskip(
    "boto3",
    reason="boto3 is not installed: the s3 extra (pip install -e '.[s3]') is not in "
    "requirements.lock yet, so the object-storage tests cannot run",
)

from devtools import s3gets
from pipeline.errors import SeedRootError, VanishedFolderError
from pipeline.run.flow import plan, prepare, process_batch, run
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.stages.parse import ParseConfig
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger
from tests.conftest import ROOT, SAMPLE_SEEDS

SEED = '---\ntitle: "{title}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "{url}"\n---\n'
QUIET = lambda _: None  # noqa: E731


def seed(title: str, url: str | None = None) -> bytes:
    return SEED.format(title=title, url=url or f"https://example.com/{uuid.uuid5(uuid.NAMESPACE_URL, title)}").encode()


class Store:
    """One fresh bucket on the test server, and a client that counts GETs per key."""

    def __init__(self, server) -> None:
        self.server = server
        self.client = server.client()
        self.bucket = f"t-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=self.bucket)
        self.gets: Counter[str] = Counter()
        s3gets.on_object_gets(self.client, self._count)

    def _count(self, key: str) -> None:
        self.gets[key] += 1

    @property
    def downloads(self) -> int:
        return sum(self.gets.values())

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def put_multipart(self, key: str, body: bytes) -> None:
        up = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        part = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=body)
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture
def store(s3_server):
    return Store(s3_server)


def go(settings, client, store: Store, prefix: str, **kw):
    kw.setdefault("check_images", False)
    options = RunOptions(seed_dir=store.url(prefix), **kw)
    return run(settings, options, client=client, emit=QUIET, s3_client=store.client)


def served(client, settings) -> dict[str, tuple[str, str]]:
    """url -> (title, seed path) of every document the alias serves."""
    client.indices.refresh(index=settings.alias)
    hits = client.search(index=settings.alias, body={"size": 1000})["hits"]["hits"]
    return {h["_source"]["url"]: (h["_source"]["title"], h["_source"]["seed"]["path"]) for h in hits}


def ledger(client, settings, root: str) -> dict[str, str]:
    return {e.path: e.state for e in Ledger(client, settings.ledger_index).entries_for_root(root).values()}


# ----------------------------------------------------------------------------- the life of a prefix
def test_a_prefix_is_indexed_then_unchanged_then_changed_then_deleted(settings, client, store):
    samples = sorted(SAMPLE_SEEDS.iterdir())
    for p in samples:
        store.put(f"seeds/2026/{p.name}", p.read_bytes())
    store.put("seeds/2026/more/extra.txt", seed("Extra"))
    store.put("seeds/2026-old/decoy.txt", seed("Decoy"))  # a sibling prefix: never read
    store.put("seeds/elsewhere.txt", seed("Elsewhere"))

    first = go(settings, client, store, "seeds/2026")
    assert first.counts == {"indexed": len(samples) + 1} and first.ok
    titles = {t for t, _ in served(client, settings).values()}
    assert "Extra" in titles and "Decoy" not in titles and "Elsewhere" not in titles
    assert not any("decoy" in k or "elsewhere" in k for k in store.gets)
    root = f"s3://{store.bucket}/seeds/2026/"
    assert ledger(client, settings, root) == {**{p.name: "indexed" for p in samples}, "more/extra.txt": "indexed"}
    assert {path for _, path in served(client, settings).values()} == {p.name for p in samples} | {"more/extra.txt"}

    store.gets.clear()
    again = go(settings, client, store, "seeds/2026/")  # the same location, written with a trailing '/'
    assert again.counts == {"unchanged": len(samples) + 1}
    assert store.downloads == 0, store.gets  # ETag + size said unchanged: nothing downloaded

    store.put("seeds/2026/more/extra.txt", seed("Extra, edited", "https://example.com/extra-edited"))
    store.gets.clear()
    edited = go(settings, client, store, "seeds/2026")
    assert edited.counts == {"indexed": 1, "unchanged": len(samples)}
    assert dict(store.gets) == {"seeds/2026/more/extra.txt": 1}  # another size: only the worker's checked read
    docs = served(client, settings)
    assert "https://example.com/extra-edited" in docs and len(docs) == len(samples) + 1  # the old URL left

    # the same bytes again, as a multipart upload: another ETag ("<md5 of md5s>-1"), the same content
    store.put_multipart("seeds/2026/more/extra.txt", seed("Extra, edited", "https://example.com/extra-edited"))
    store.gets.clear()
    reupload = go(settings, client, store, "seeds/2026")
    assert reupload.counts == {"unchanged": len(samples) + 1}  # the content hash is the truth
    assert dict(store.gets) == {"seeds/2026/more/extra.txt": 1}  # downloaded once to find that out
    store.gets.clear()
    assert go(settings, client, store, "seeds/2026").counts == {"unchanged": len(samples) + 1}
    assert store.downloads == 0  # the new ETag was recorded

    store.delete("seeds/2026/more/extra.txt")
    gone = go(settings, client, store, "seeds/2026")
    assert gone.counts == {"deleted": 1, "unchanged": len(samples)}
    assert "https://example.com/extra-edited" not in served(client, settings)
    assert ledger(client, settings, root)["more/extra.txt"] == "deleted"


def test_an_oversized_object_is_quarantined_without_being_downloaded(settings, client, store):
    store.put("p/big.txt", seed("Big") + b"x" * 5000)
    store.put("p/small.txt", seed("Small"))
    report = go(settings, client, store, "p", parse=ParseConfig(max_bytes=2000))
    assert report.counts == {"indexed": 1, "quarantined": 1}
    (q,) = report.quarantined
    assert q["path"] == "big.txt" and q["stage"] == "read" and "over the 2.0 KiB limit" in q["reason"]
    assert "p/big.txt" not in store.gets
    again = go(settings, client, store, "p", parse=ParseConfig(max_bytes=2000))
    assert again.counts == {"unchanged": 2}


def test_odd_keys_each_get_exactly_one_outcome(settings, client, store):
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    long_name = "/".join(["l" * 200] * 4) + "/" + "m" * 150 + ".txt"  # ~960 bytes (the server takes 255 a segment)
    objects = {
        "p/ok.txt": seed("Ok"),
        "p/ctl\x01name.txt": seed("Control"),  # control character: refused, named
        f"p/{nfc}": seed("Cafe NFC"),  # two keys that look alike: two objects, two outcomes
        f"p/{nfd}": seed("Cafe NFD"),
        "p/empty.txt": b"",  # zero bytes: read, refused by the parser
        "p/folder/": b"not a folder",  # a "folder" with content: refused, named
        "p/marker/": b"",  # a folder marker: not a seed
        "p/.git/hidden.txt": seed("Hidden"),  # hidden folder: skipped, as in a folder walk
        "p/notes.json": b"{}",  # not seed-named: skipped
        f"p/{long_name}": seed("Long"),  # long but legal (S3 allows 1024 bytes)
        "p/a b %20 ?#.txt": seed("Punctuation"),
        "p/日本/記事.md": seed("Japanese"),
    }
    for key, body in objects.items():
        store.put(key, body)
    report = go(settings, client, store, "p")
    by_path = {item["path"]: item for items in report.samples.values() for item in items}
    assert report.files_seen == 9 and report.ok
    assert report.counts == {"indexed": 6, "quarantined": 3}, report.counts
    assert by_path["ctl\x01name.txt"]["reason"] == "object key 'p/ctl\\x01name.txt' has a control character; rename it"
    assert by_path["folder/"]["reason"].startswith("object key 'p/folder/' ends with '/'")
    assert by_path["empty.txt"]["reason"] == "file is empty"
    assert "p/.git/hidden.txt" not in store.gets and "p/ctl\x01name.txt" not in store.gets
    states = ledger(client, settings, f"s3://{store.bucket}/p/")
    assert states == {
        "ok.txt": "indexed",
        nfc: "indexed",
        nfd: "indexed",
        long_name: "indexed",
        "a b %20 ?#.txt": "indexed",
        "日本/記事.md": "indexed",
        "ctl\x01name.txt": "quarantined",
        "empty.txt": "quarantined",
        "folder/": "quarantined",
    }
    again = go(settings, client, store, "p")
    assert again.counts == {"unchanged": 9}


# ----------------------------------------------------------------------------- changes mid-run
def test_an_object_replaced_between_listing_and_its_one_read_is_changed_then_taken(settings, client, store):
    store.put("p/a.txt", seed("Listed", "https://example.com/a"))
    raw = store.server.client()  # no counting hook: writes made from inside the hook
    swapped = []

    def swap(key):  # the run's first GET (the worker's): the object changes after the listing saw it
        if not swapped:  # (this hook runs before the GET is sent, presigned or not)
            swapped.append(1)
            raw.put_object(Bucket=store.bucket, Key="p/a.txt", Body=seed("Replaced", "https://example.com/a"))

    s3gets.on_object_gets(store.client, swap)
    report = go(settings, client, store, "p")
    assert report.counts == {"changed": 1}
    assert [c["reason"] for c in report.listed("changed")] == ["changed since it was planned: its ETag is different"]
    assert indices.count(client, settings.alias) == 0
    assert go(settings, client, store, "p").counts == {"indexed": 1}
    assert served(client, settings)["https://example.com/a"][0] == "Replaced"
    again = go(settings, client, store, "p")
    assert again.counts == {"unchanged": 1}


def test_each_object_is_downloaded_once_per_run_and_parsed_in_worker_processes(settings, client, store, monkeypatch):
    """Threads GET, worker processes parse: a first run reads every object once (planning reads none),
    a re-run none, an edit once; a copy to another key (a move) is hashed by planning, then read."""
    from pipeline.run import parallel
    from pipeline.run.tuning import Tuning

    monkeypatch.setattr(parallel, "MIN_SEEDS_PER_WORKER", 10)  # workers for a test-sized prefix
    bodies = {f"p/{i:02}.txt": seed(f"Seed {i}" + "!" * i) for i in range(40)}  # 40 sizes
    for key, body in bodies.items():
        store.put(key, body)
    tuning = Tuning(parse_workers=2, read_threads=4)
    messages: list[str] = []
    options = RunOptions(seed_dir=store.url("p"), check_images=False, tuning=tuning)
    first = run(settings, options, client=client, emit=messages.append, s3_client=store.client)
    assert first.counts == {"indexed": 40} and first.ok
    assert "parsing in 2 worker processes (SEEDNEWS_PARSE_WORKERS to change)" in messages
    assert dict(store.gets) == {key: 1 for key in bodies}
    entries = Ledger(client, settings.ledger_index).entries_for_root(f"s3://{store.bucket}/p/").values()
    assert {e.path: e.sha256 for e in entries} == {k[2:]: hashlib.sha256(b).hexdigest() for k, b in bodies.items()}

    store.gets.clear()
    assert go(settings, client, store, "p", tuning=tuning).counts == {"unchanged": 40}
    assert store.downloads == 0

    store.put("p/03.txt", seed("Seed 3, edited"))
    store.put("p/moved/05.txt", bodies["p/05.txt"])  # S3 has no rename: a copy, then a delete
    store.delete("p/05.txt")
    store.gets.clear()
    report = go(settings, client, store, "p", tuning=tuning)
    assert (report.n("deleted"), report.indexed, report.unchanged) == (1, 2, 38), report.counts
    assert "1 files moved" in report.render()
    assert dict(store.gets) == {"p/03.txt": 1, "p/moved/05.txt": 2}  # the move: planning's hash, then the read


def test_an_object_changed_or_removed_after_planning_is_changed_not_indexed(settings, client, store):
    store.put("p/edit.txt", seed("Before edit", "https://example.com/edit"))
    store.put("p/gone.txt", seed("Before delete", "https://example.com/gone"))
    options = RunOptions(seed_dir=store.url("p"), check_images=False, run_id="r1")
    target = prepare(client, settings, options)
    the_plan = plan(options, client, settings, target, s3_client=store.client)
    store.put("p/edit.txt", seed("After edit", "https://example.com/edit"))
    store.delete("p/gone.txt")
    report = RunReport()
    for batch in the_plan.batches:
        report.merge(
            process_batch(
                batch,
                client=client,
                settings=settings,
                options=options,
                target=target,
                emit=QUIET,
                s3_client=store.client,
            )
        )
    reasons = {c["path"]: c["reason"] for c in report.listed("changed")}
    assert report.counts == {"changed": 2}, report.samples
    assert reasons == {
        "edit.txt": "changed since it was planned: its ETag is different",
        "gone.txt": "changed since it was planned: the object disappeared",
    }
    assert indices.count(client, settings.alias) == 0
    after = go(settings, client, store, "p")
    assert after.counts == {"indexed": 1, "deleted": 1}
    assert served(client, settings)["https://example.com/edit"][0] == "After edit"


def test_the_vanish_guard_protects_a_prefix_that_looks_emptied(settings, client, store):
    for i in range(12):
        store.put(f"p/s{i:02}.txt", seed(f"Seed {i}"))
    assert go(settings, client, store, "p").counts == {"indexed": 12}
    for i in range(12):
        store.delete(f"p/s{i:02}.txt")
    with pytest.raises(VanishedFolderError, match="12 of the 12"):
        go(settings, client, store, "p")
    assert indices.count(client, settings.alias) == 12
    assert go(settings, client, store, "p", allow_mass_delete=True).counts == {"deleted": 12}
    assert indices.count(client, settings.alias) == 0


def test_a_missing_bucket_is_a_usage_error_before_anything_is_written(settings, client, s3_server):
    options = RunOptions(seed_dir="s3://no-such-bucket-here/p", check_images=False)
    with pytest.raises(SeedRootError, match="NoSuchBucket"):
        run(settings, options, client=client, emit=QUIET, s3_client=s3_server.client())
    assert client.indices.get(index=f"{settings.index_base}*") == {}


# ----------------------------------------------------------------------------- the CLI
def test_the_cli_runs_from_s3_with_credentials_from_the_environment(settings, client, store, s3_server, opensearch_url):
    for p in SAMPLE_SEEDS.iterdir():
        store.put(f"drop/{p.name}", p.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_server.env, OPENSEARCH_URL=opensearch_url, SEEDNEWS_INDEX=settings.index_base, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "pipeline", "run", store.url("drop"), "--skip-images"]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{len(list(SAMPLE_SEEDS.iterdir()))} to process" in first.stdout
    assert s3_server.secret_key not in first.stdout + first.stderr
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert second.returncode == 0 and "0 to process" in second.stdout, second.stdout + second.stderr
    bad = subprocess.run(
        [*argv[:4], f"s3://{store.bucket}/drop", "--skip-images"],
        env={**env, "AWS_SECRET_ACCESS_KEY": "wrong-secret"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "SignatureDoesNotMatch" in bad.stderr, bad.stdout + bad.stderr
    assert "wrong-secret" not in bad.stdout + bad.stderr


# ----------------------------------------------------------------------------- the DAG
def test_the_dag_reads_s3_with_the_amazon_providers_connection(store, s3_server, opensearch_url, tmp_path):
    """``airflow dags test`` with ``seed_dir=s3://...``: the credentials and the endpoint come from the
    Airflow connection ``aws_default`` (type aws), none from the environment."""
    import json

    pytest.importorskip(
        "airflow.providers.amazon",
        reason="apache-airflow-providers-amazon is not installed (the airflow extra; not in requirements.lock yet)",
    )
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    for p in SAMPLE_SEEDS.iterdir():
        store.put(f"nightly/{p.name}", p.read_bytes())
    airflow = str(ROOT / ".venv" / "bin" / "airflow") if (ROOT / ".venv" / "bin" / "airflow").exists() else "airflow"
    home = tmp_path / "airflow_home"
    conn = {
        "conn_type": "aws",
        "login": s3_server.access_key,
        "password": s3_server.secret_key,
        "extra": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEEDNEWS_S3"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
            "OPENSEARCH_URL": opensearch_url,
        }
    )
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    base = f"dags3-{uuid.uuid4().hex[:8]}"
    conf = {"seed_dir": store.url("nightly"), "index": base, "skip_images": True, "max_batches": 2}
    out = subprocess.run(
        [airflow, "dags", "test", "seednews_index", "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = out.stdout + out.stderr
    os_client = make_client(Settings(opensearch_url=opensearch_url))
    try:
        assert out.returncode == 0 and "state=success" in log, log[-4000:]
        assert "S3 from the Airflow connection 'aws_default'" in log
        assert s3_server.secret_key not in log
        assert "2 seed files seen: 2 indexed" in log
        os_client.indices.refresh(index=base)
        assert indices.count(os_client, base) == 2
    finally:
        os_client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
        os_client.indices.delete_index_template(name=base, ignore=[404])
