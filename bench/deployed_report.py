"""The table of ``bench/bench_deployed.py`` and issue 21's targets, each next to its figure (PASS or MISS); where
one is missed, the arithmetic behind it: each row's CPU floor (the CPU seconds of its processes, the node and the
store, spread over every core) against its wall time."""

from __future__ import annotations

LABELS = {
    "raw": "raw `_bulk` (pre-built NDJSON)",
    "script": "afternoon script (`bench/afternoon.py`)",
    "cli-folder": "CLI on a folder (`seednews run`)",
    "cli-folder-night": "CLI on a folder, no-change night",
    "flow-run": "`flow.run` in-process (the same run, no process start-up)",
    "stack": "LocalExecutor stack (REST trigger -> success)",
    "stack-night": "LocalExecutor stack, no-change night",
    "cli-s3": "CLI on S3",
    "cli-s3-night": "CLI on S3, no-change night",
    "celery-1": "Celery stack, 1 worker, S3",
    "celery-2": "Celery stack, 2 workers, S3",
    "celery-night": "Celery stack, 2 workers, no-change night",
}
NIGHTS = {
    "cli-folder": "cli-folder-night",
    "stack": "stack-night",
    "cli-s3": "cli-s3-night",
    "celery-2": "celery-night",
}
STACK_VS_CLI = {100_000: 1.15, 10_000: 1.5}  # the wall ratio allowed at N (the 10,000 one below 100,000)
S3_VS_FOLDER = 0.5
CELERY_VS_S3 = 0.5
CPU_VS_SCRIPT = 0.5
NODE_VS_RAW = 1.3
NIGHT_SHARE = 0.05


def _table(result: dict) -> list[str]:
    out = [
        "| path | N | wall s | files/s | CPU ms / file (its processes) | node CPU ms / file | S3 store CPU ms / file "
        "| peak memory MB (PSS) | ops on its indices | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in LABELS.items():
        r = result["rows"].get(key)
        if r is None:
            continue
        store = f"{r['store_ms']:.2f}" if r["store_ms"] else "—"
        ops = f"{r['index_ops']:,}" if "index_ops" in r else "—"
        out.append(
            f"| {label} | {r['n']:,} | {r['wall']:.2f} | {r['rate']:,.0f} | {r['cpu_ms']:.2f} | {r['node_ms']:.2f} "
            f"| {store} | {r['rss_mb']:.0f} | {ops} | {r['load']:.2f} |"
        )
    return out


def floor(r: dict, cores: int) -> str:
    """The row's CPU floor: every CPU second it made the machine spend, over every core, against its wall."""
    per_file = r["cpu_ms"] + r["node_ms"] + r["store_ms"]
    secs = per_file * r["n"] / 1000 / cores
    store = f" + {r['store_ms']:.2f} of the store" if r["store_ms"] else ""
    return (
        f"{r['cpu_ms']:.2f} CPU ms/file of its own + {r['node_ms']:.2f} of the node{store} = {per_file:.2f} ms/file "
        f"on {cores} cores: a floor of {secs:.2f} s ({r['n'] / max(secs, 1e-9):,.0f} files/s at most); "
        f"it took {r['wall']:.2f} s ({r['wall'] / max(secs, 1e-9):.2f}x its floor)"
    )


def _targets(result: dict) -> list[str]:
    rows, cores = result["rows"], result["machine"]["cores"] or 1
    out = ["", "| target | measured | |", "| --- | --- | --- |"]
    notes: list[str] = []

    def check(what: str, value: str, ok: bool, involved: tuple[str, ...], why: str = "") -> None:
        out.append(f"| {what} | {value} | {'PASS' if ok else 'MISS'} |")
        if not ok:
            notes.append(f"- {what}: {why}".rstrip(": "))
            notes.extend(f"  - {k}: {floor(rows[k], cores)}" for k in involved)

    cli, stack = rows.get("cli-folder"), rows.get("stack")
    if cli and stack:
        limit = STACK_VS_CLI[100_000] if cli["n"] >= 100_000 else STACK_VS_CLI[10_000]
        ratio = stack["wall"] / cli["wall"]
        check(
            f"stack wall <= {limit}x the CLI's (N = {cli['n']:,})",
            f"{ratio:.2f}x ({stack['wall']:.1f} vs {cli['wall']:.1f} s)",
            ratio <= limit,
            ("stack", "cli-folder"),
            f"the stack's wall above the CLI's: {stack['wall'] - cli['wall']:.1f} s",
        )
    s3 = rows.get("cli-s3")
    if s3 and cli:
        ratio = s3["rate"] / cli["rate"]
        check(
            f"CLI on S3 >= {S3_VS_FOLDER}x the CLI on a folder (files/s)",
            f"{ratio:.2f}x ({s3['rate']:,.0f} vs {cli['rate']:,.0f})",
            ratio >= S3_VS_FOLDER,
            ("cli-s3", "cli-folder"),
        )
    c1, c2 = rows.get("celery-1"), rows.get("celery-2")
    if c2 and s3:
        ratio = c2["rate"] / s3["rate"]
        check(
            f"Celery, 2 workers >= {CELERY_VS_S3}x the CLI on S3 (files/s)",
            f"{ratio:.2f}x ({c2['rate']:,.0f} vs {s3['rate']:,.0f})",
            ratio >= CELERY_VS_S3,
            ("celery-2", "cli-s3"),
        )
    if c1 and c2:
        check(
            "Celery: 2 workers faster than 1",
            f"{c2['wall']:.1f} vs {c1['wall']:.1f} s",
            c2["wall"] < c1["wall"],
            ("celery-2", "celery-1"),
        )
    script, raw = rows.get("script"), rows.get("raw")
    for key in ("cli-folder", "stack"):
        r = rows.get(key)
        if r and script:
            ratio = r["cpu_ms"] / script["cpu_ms"]
            check(
                f"{key}: CPU/file <= {CPU_VS_SCRIPT}x the afternoon script's",
                f"{ratio:.2f}x ({r['cpu_ms']:.2f} vs {script['cpu_ms']:.2f} ms)",
                ratio <= CPU_VS_SCRIPT,
                (key, "script"),
                f"{CPU_VS_SCRIPT}x is {CPU_VS_SCRIPT * script['cpu_ms']:.2f} ms/file; "
                f"{r['cpu_ms'] - CPU_VS_SCRIPT * script['cpu_ms']:.2f} ms/file to cut",
            )
        if r and raw:
            ratio = r["node_ms"] / max(raw["node_ms"], 1e-9)
            check(
                f"{key}: node CPU/file <= {NODE_VS_RAW}x raw `_bulk`'s",
                f"{ratio:.2f}x ({r['node_ms']:.2f} vs {raw['node_ms']:.2f} ms)",
                ratio <= NODE_VS_RAW,
                (key, "raw"),
                "the node's CPU counts every user of a shared node (docs/benchmarks.md, the ledger's cost)",
            )
    for full, night in NIGHTS.items():
        if full in rows and night in rows:
            share = rows[night]["wall"] / rows[full]["wall"]
            check(
                f"{full}: no-change night <= {NIGHT_SHARE:.0%} of the full run",
                f"{share:.1%} ({rows[night]['wall']:.2f} of {rows[full]['wall']:.2f} s; "
                f"{rows[night].get('index_ops', 0)} ops on its indices)",
                share <= NIGHT_SHARE,
                (night,),
                f"{NIGHT_SHARE:.0%} is {NIGHT_SHARE * rows[full]['wall']:.2f} s",
            )
    return out + (["", "Where a target is missed (CPU floors):", *notes] if notes else [])


def render(result: dict) -> str:
    m = result["machine"]
    la0 = " ".join(f"{x:.2f}" for x in result["loadavg_start"])
    la1 = " ".join(f"{x:.2f}" for x in result["loadavg_end"])
    head = [
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, OpenSearch "
        f"{result['opensearch']}; load average {la0} (start) -> {la1} (end)",
        f"folder rows N = {result['n']:,}, S3 rows N = {result['s3_n']:,}; corpus {result['corpus']}",
        "",
    ]
    return "\n".join(head + _table(result) + _stacks(result) + _targets(result))


def _stacks(result: dict) -> list[str]:
    """Where each stack row's time and CPU went: its tasks' own durations and each part's CPU seconds."""
    out = []
    for key, r in result["rows"].items():
        if "tasks_s" in r:
            tasks = ", ".join(f"{k} {v:.1f}" for k, v in r["tasks_s"].items())
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_parts_s"].items())
            out.append(f"- {key}: tasks (s) {tasks}; CPU s by part: {parts}")
    return ["", "Stacks, task by task:", *out] if out else []
