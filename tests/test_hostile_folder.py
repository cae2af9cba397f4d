"""Issue 18's "done when": a seed folder with every input that used to stop a run (or hold it for minutes),
next to 1,000 good seeds, ends with the 1,000 indexed and exactly one outcome for each bad file, in the
CLI and in the DAG, against the real node. Image checks stay on (the default); no URL in the folder
leads off this machine (the image URLs are malformed or on loopback, which the SSRF rule blocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests import faultkit as fk
from tests.conftest import ROOT

HEAD = '---\ntitle: "{name}"\npublishedDateTime: 2021-10-06T11:10:00Z\n'
BAD_URL = "http://[1]@"  # yarl raised IndexError on it: every run stopped


def _seed(name: str, body: str, url: str | None = None) -> str:
    url = url or f"https://example.com/hostile/{name}"
    return HEAD.format(name=name) + (f'webUrl: "{url}"\n' if url != "-" else "") + body + "---\n"


def _colliding_keys(n: int) -> str:
    """``n`` integer keys that all share one hash in CPython (multiples of 2**61 - 1): quadratic to insert."""
    m = (1 << 61) - 1
    return "".join(f"{k * m}: 1\n" for k in range(1, n + 1))


HOSTILE: dict[str, tuple[str, str]] = {  # file -> (text, expected state)
    "url_web.txt": (_seed("url_web", "", BAD_URL), "quarantined"),
    "url_original.txt": (_seed("url_original", f'originalUrl: "{BAD_URL}"\n'), "quarantined"),
    "url_related.txt": (_seed("url_related", f'related:\n  - title: r\n    webUrl: "{BAD_URL}"\n'), "indexed"),
    "url_image.txt": (
        _seed("url_image", f'images:\n  - url: "{BAD_URL}"\n  - url: "http://127.0.0.1:9/x.jpg"\n'),
        "indexed",
    ),
    "quadratic_keys.txt": (_seed("quadratic_keys", _colliding_keys(38_000)), "quarantined"),
    "tab_megabyte.txt": (_seed("tab_megabyte", "excerpt: |\n" + ("  word\tword " * 80_000) + "\n"), "indexed"),
    "quality_huge.txt": (_seed("quality_huge", "quality: 3000000000\n"), "quarantined"),
    "long_key.txt": (_seed("long_key", "? " + "k" * 60_000 + "\n: 1\n"), "quarantined"),
    "secured_number.txt": (_seed("secured_number", "secured: 918273645546372819\n"), "quarantined"),
    "secured_tagged.txt": (_seed("secured_tagged", "secured: !vault 918273645546372819\n"), "quarantined"),
    "yamlrs_colon.txt": (_seed("yamlrs_colon", "topics: [:d]\n"), "quarantined"),
    "yamlrs_flow.txt": (_seed("yamlrs_flow", "s: {l\n:}\ne:\n"), "quarantined"),
}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 1000, tag="hostile")
    for name, (text, _) in HOSTILE.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _check(counts: dict, outcomes: dict[str, str], text: str) -> None:
    expected = {name: state for name, (_, state) in HOSTILE.items()}
    assert {k: v for k, v in outcomes.items() if k in HOSTILE} == expected, text[-3000:]
    indexed = 1000 + sum(1 for s in expected.values() if s == "indexed")
    assert counts == {"indexed": indexed, "quarantined": len(HOSTILE) + 1000 - indexed}, counts
    assert "918273645546372819" not in text  # the secured values are never quoted


def test_a_hostile_folder_next_to_1000_good_seeds_in_the_cli(opensearch_url, tmp_path):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client
    from pipeline.stores.ledger import Ledger

    folder = _folder(tmp_path)
    index = f"hostile-{uuid.uuid4().hex[:8]}"
    settings = Settings(opensearch_url=opensearch_url, index_base=index)
    env = {**os.environ, "OPENSEARCH_URL": opensearch_url, "PYTHONPATH": str(ROOT)}
    client = make_client(settings)
    try:
        t = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(folder), "--index", index, "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        took = time.monotonic() - t
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-3000:]
        report = json.loads(done.stdout)  # --json: stdout carries the report only
        entries = Ledger(client, settings.ledger_index).entries_for_root(str(folder)).values()
        _check(report["counts"], {e.path: e.state for e in entries}, out)
        assert took < 120, f"{took:.0f} s"  # a hang guard: it is seconds; these inputs alone used to take minutes
        client.indices.refresh(index=settings.alias)
        assert client.count(index=settings.alias)["count"] == report["counts"]["indexed"]
        reasons = " ".join(e.reason or "" for e in entries)
        assert "918273645546372819" not in reasons
    finally:
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=index, ignore=[404])
        client.close()


def test_a_hostile_folder_next_to_1000_good_seeds_in_the_dag(airflow_env, opensearch_url, tmp_path):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client
    from pipeline.stores.ledger import Ledger
    from tests.test_dag import _dags_test

    folder = _folder(tmp_path)
    index = f"hostiledag-{uuid.uuid4().hex[:8]}"
    settings = Settings(opensearch_url=opensearch_url, index_base=index)
    client = make_client(settings)
    try:
        out = _dags_test(airflow_env, opensearch_url, {"seed_dir": str(folder), "index": index, "max_batches": 2})
        log = out.stdout + out.stderr
        assert out.returncode == 0 and "state=success" in log, log[-4000:]
        entries = Ledger(client, settings.ledger_index).entries_for_root(str(folder)).values()
        states = {e.path: e.state for e in entries}
        counts: dict[str, int] = {}
        for s in states.values():
            counts[s] = counts.get(s, 0) + 1
        _check(counts, states, log)
        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == counts["indexed"]
    finally:
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=index, ignore=[404])
        client.close()
