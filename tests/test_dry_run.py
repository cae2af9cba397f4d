"""A dry run says what the real run will do: on the same folder (copies of one article in one chunk and in
different batches, a broken seed) a dry run and then a real run into an empty index give the same counts per
state and the same duplicate and quarantine reasons, and the dry run writes nothing."""

from __future__ import annotations

from pipeline.policy import LATER_COPY_INDEXED, duplicate_reason
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from tests.test_one_outcome import docs, write

QUIET = lambda _: None  # noqa: E731


def folder_with_copies(root) -> None:
    """Nine files in three batches (the walk is sorted by name; the ingest order is by mtime)."""
    write(root / "1_x_old.txt", "x old", "https://example.com/x", mtime=1_000)  # batch 1, loses to batch 3
    write(root / "2_y_new.txt", "y new", "https://example.com/y", mtime=3_000)  # batch 1, wins over batch 3
    write(root / "3_unique.txt", "u1", "https://example.com/u1", mtime=1_000)
    write(root / "4_z_a.txt", "z a", "https://example.com/z", mtime=1_000)  # batch 2: both copies in one chunk
    write(root / "5_z_b.txt", "z b", "https://example.com/z", mtime=2_000)
    (root / "6_broken.txt").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    write(root / "7_unique.txt", "u2", "https://example.com/u2", mtime=1_000)
    write(root / "8_y_old.txt", "y old", "https://example.com/y", mtime=1_000)
    write(root / "9_x_new.txt", "x new", "https://example.com/x", mtime=3_000)


def go(settings, client, folder, **kw) -> RunReport:
    options = RunOptions(seed_dir=str(folder), check_images=False, max_batches=3, **kw)
    return run(settings, options, client=client, emit=QUIET)


def reasons(report: RunReport) -> dict[str, set[tuple[str, str]]]:
    return {s: {(b["path"], b["reason"]) for b in report.listed(s)} for s in ("duplicate", "quarantined")}


def test_a_dry_run_reports_what_the_real_run_then_does(settings, client, tmp_path):
    folder_with_copies(tmp_path)
    dry = go(settings, None, tmp_path, dry_run=True)
    assert not client.indices.exists(index=settings.alias), "a dry run writes nothing"
    real = go(settings, client, tmp_path)
    assert real.counts == {"indexed": 5, "duplicate": 3, "quarantined": 1}
    assert reasons(real)["duplicate"] == {
        ("1_x_old.txt", duplicate_reason("9_x_new.txt")),  # both landed; finalize kept the later copy
        ("4_z_a.txt", duplicate_reason("5_z_b.txt")),  # one chunk: only the later copy was sent
        ("8_y_old.txt", LATER_COPY_INDEXED),  # refused: the index held a copy ingested later
    }
    assert docs(client, settings) == {
        "https://example.com/x": ("x new", "9_x_new.txt"),
        "https://example.com/y": ("y new", "2_y_new.txt"),
        "https://example.com/z": ("z b", "5_z_b.txt"),
        "https://example.com/u1": ("u1", "3_unique.txt"),
        "https://example.com/u2": ("u2", "7_unique.txt"),
    }
    assert (dry.counts, reasons(dry)) == (real.counts, reasons(real))
    assert dry.dry_run and "5 would be indexed" in dry.render()
