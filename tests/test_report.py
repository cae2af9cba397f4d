from pipeline.report import RunReport


def _report(n_quarantined: int) -> RunReport:
    return RunReport(
        files_seen=n_quarantined + 3, indexed=3, created=2, updated=1,
        quarantined=[{"path": f"/s/{i}.txt", "stage": "yaml", "reason": f"bad {i}"} for i in range(n_quarantined)],
    )


def test_render_is_a_short_readable_summary():
    text = _report(2).render()
    assert text.splitlines()[0] == "seednews run: 5 seed files seen, 3 indexed (2 new, 1 updated), 2 quarantined, 0 failed"
    assert "    - /s/0.txt: yaml: bad 0" in text


def test_xcom_copy_is_capped_but_counts_stay_exact():
    data = _report(500).to_dict(max_items=200)
    assert len(data["quarantined"]) == 200 and data["omitted"] == {"quarantined": 300}
    merged = RunReport().merge(RunReport.from_dict(data)).merge(RunReport.from_dict(_report(1).to_dict(max_items=200)))
    assert merged.n("quarantined") == 501 and merged.files_seen == 507
    text = merged.render()
    assert "501 quarantined" in text
    assert "… and 481 more (the ledger index lists every file)" in text


def test_failures_make_the_report_not_ok_even_when_left_out_of_the_copy():
    r = RunReport(failed=[{"path": "a", "id": "x", "status": 400, "reason": "mapper_parsing_exception"}] * 3)
    copy = RunReport.from_dict(r.to_dict(max_items=1))
    assert not copy.ok and copy.n("failed") == 3
    assert "(kept in the dead-letter index for replay)" in copy.render()
