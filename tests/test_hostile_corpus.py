"""The whole hostile corpus in one batch, next to good seeds, against a REAL node: every file gets
its asserted outcome, and nothing crashes, hangs or blows up memory."""

from __future__ import annotations

import json
import os
import resource
import shutil
import threading

from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger
from tests.conftest import DATA, SAMPLE_SEEDS

EXPECTED_BAD = json.loads((DATA / "seeds" / "expected_bad.json").read_text(encoding="utf-8"))


def _corpus(tmp_path):
    root = tmp_path / "seeds"
    shutil.copytree(DATA / "seeds" / "bad", root)
    for p in (DATA / "seeds" / "good").iterdir():
        shutil.copy(p, root / f"good_{p.name}")
    for p in SAMPLE_SEEDS.iterdir():
        shutil.copy(p, root / p.name)
    # the same article as a sample seed, in an older file: loses to the sample (newest file wins)
    dup = root / "dup_of_commondreams.txt"
    dup.write_text(
        (SAMPLE_SEEDS / "002_2c91f7d39cae87f0.txt").read_text(encoding="utf-8").replace("quality: 31", "quality: 1"),
        encoding="utf-8",
    )
    os.utime(dup, (1_000, 1_000))
    with open(root / "huge.txt", "wb") as fh:  # 30 MB (sparse)
        fh.truncate(30 * 1024 * 1024)
    (tmp_path / "outside.txt").write_text((SAMPLE_SEEDS / "000_9af88004a1e871b6.txt").read_text(encoding="utf-8"))
    os.symlink(tmp_path / "outside.txt", root / "escape.txt")
    (root / ".good_bom_crlf.txt.swp").write_bytes(b"\x00swap")
    (root / "good_cp1252.txt~").write_text("backup")
    return root


def test_hostile_corpus(settings, client, tmp_path):
    root = _corpus(tmp_path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = run(
        settings, RunOptions(seed_dir=str(root), check_images=False, max_batches=2), client=client, emit=lambda _: None
    )
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 200, f"memory grew by {grown_mb:.0f} MB"

    quarantined = {q["path"]: (q["stage"], q["reason"]) for q in report.quarantined}
    expected = {name: (e["stage"], e["reason"]) for name, e in EXPECTED_BAD.items()}
    expected["huge.txt"] = ("read", "file is 30.0 MiB, over the 1.0 MiB limit for a seed")
    expected["escape.txt"] = ("discover", "symbolic link points outside the seed folder")
    assert quarantined == expected
    assert [d["path"] for d in report.listed("duplicate")] == ["dup_of_commondreams.txt"]
    assert report.failed == []
    good = 7 + 2  # tests/data/seeds/good + the two samples
    assert report.indexed == good and indices.count(client, settings.alias) == good

    counts = Ledger(client, settings.ledger_index).counts(str(root))
    # every seed-named file has its one outcome in the ledger too, the link out of the folder included
    assert counts == {"indexed": good, "quarantined": len(EXPECTED_BAD) + 2, "duplicate": 1}
    # editor files are not seeds: never read, never recorded
    assert "good_cp1252.txt~" not in quarantined and ".good_bom_crlf.txt.swp" not in quarantined


def test_two_runs_at_once_do_not_corrupt_anything(settings, tmp_path):
    """A scheduled and a manual run racing on the same folder and alias (the DAG also sets
    max_active_runs=1; this proves the stages are safe anyway)."""
    from pipeline.stores.client import make_client

    root = tmp_path / "seeds"
    root.mkdir()
    n = 300
    for i in range(n):
        (root / f"{i:04}.txt").write_text(
            f'---\ntitle: "T{i}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/{i}"\n---\n',
            encoding="utf-8",
        )
    errors, reports = [], []

    def go():
        try:
            reports.append(
                run(
                    settings,
                    RunOptions(seed_dir=str(root), check_images=False, max_batches=3),
                    client=make_client(settings),
                    emit=lambda _: None,
                )
            )
        except Exception as exc:  # noqa: BLE001 -- collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    client = make_client(settings)
    try:
        assert errors == []
        assert all(r.failed == [] for r in reports)
        client.indices.refresh(index=settings.alias)
        assert indices.count(client, settings.alias) == n
        assert len(indices.alias_indices(client, settings.alias)) == 1  # no second index from a creation race
        assert Ledger(client, settings.ledger_index).counts(str(root)) == {"indexed": n}
    finally:
        client.indices.delete(index=f"{settings.index_base}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=settings.index_base, ignore=[404])
