from pipeline.run.report import MAX_SAMPLES, RunReport
from pipeline.types import SeedFile, SeedOutcome


def _seed(name: str) -> SeedFile:
    return SeedFile("/s", name, "/s", name, 10)


def _report(n_quarantined: int, indexed: int = 3) -> RunReport:
    r = RunReport()
    for i in range(indexed):
        r.add(SeedOutcome(_seed(f"ok{i}.txt"), "indexed", doc_id=f"d{i}"))
    for i in range(n_quarantined):
        r.add(SeedOutcome(_seed(f"{i}.txt"), "quarantined", "yaml", f"bad {i}"))
    return r


def test_render_is_a_short_readable_summary():
    text = _report(2).render()
    assert text.splitlines()[0] == "seednews run: 5 seed files seen: 3 indexed, 2 quarantined"
    assert "    - 0.txt: yaml: bad 0" in text


def test_xcom_copy_is_capped_but_counts_stay_exact():
    data = _report(500).to_dict(max_items=200)
    assert len(data["samples"]["quarantined"]) == 200 and data["counts"] == {"indexed": 3, "quarantined": 500}
    merged = RunReport().merge(RunReport.from_dict(data)).merge(RunReport.from_dict(_report(1).to_dict(max_items=200)))
    assert merged.n("quarantined") == 501 and merged.files_seen == 507
    text = merged.render()
    assert "501 quarantined" in text
    assert "… and 481 more (the ledger index lists every file)" in text


def test_samples_are_bounded_in_memory_counts_are_not():
    r = _report(MAX_SAMPLES + 50, indexed=0)
    assert len(r.quarantined) == MAX_SAMPLES and r.n("quarantined") == MAX_SAMPLES + 50


def test_failures_make_the_report_not_ok_even_when_left_out_of_the_copy():
    r = RunReport()
    for i in range(3):
        r.add(
            SeedOutcome(
                _seed(f"{i}.txt"),
                "dead_letter",
                "index",
                "HTTP 400: mapper_parsing_exception (kept for replay)",
                f"x{i}",
                400,
            )
        )
    copy = RunReport.from_dict(r.to_dict(max_items=1))
    assert not copy.ok and copy.n("dead_letter") == 3
    assert "(kept for replay)" in copy.render()
    assert "NOT OK" in copy.render().splitlines()[0]


def test_deleted_files_are_counted_but_not_seen():
    r = _report(0, indexed=1)
    r.add(SeedOutcome(_seed("gone.txt"), "deleted", "plan", "the file is gone", "d9"))
    r.removed = 1
    assert r.files_seen == 1
    assert "1 seed files deleted since the last run; 1 articles removed from the index" in r.render()
