"""The Airflow deployment operators run, started with the project's own command (``./scripts/stack up``):
PostgreSQL metadata DB, api-server with login (SimpleAuthManager), scheduler, dag-processor and
triggerer on 127.0.0.1, against the real OpenSearch node. Stopped with ``./scripts/stack down --purge``.

- REST API with a JWT from ``/auth/token``: a conf the Params accept runs to success and the documents
  are in OpenSearch; a conf the Params reject is refused with the reason; no token, no access.
- The DAG is unpaused by deployment, and the first start runs nothing: its next run is the next 02:00 UTC.
- A run in which every file is quarantined fails, its reason is an ERROR line of the failed task's log
  (what the UI lists under "Recent Failed Task Logs"), and the failure reaches a webhook receiver started
  here on 127.0.0.1 with a message naming the DAG, run and task.
- A real browser (Debian's Chromium, headless, driven by Playwright): log in, open the DAG, the trigger
  form's Trigger button is enabled with every default untouched and no switch is marked required, change
  Params, trigger, see the run succeed and its report as the run's note, rendered (a heading and tables);
  wrong values are refused; a failed run's reason shows on the DAG's Overview ("Recent Failed Task Logs"
  -> "Show Logs"). Screenshots go to ``artifacts/screenshots/`` (paths printed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, SAMPLE_SEEDS
from tests.stackkit import api, free_port, wait_until

DAG_ID = "seednews_index"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        type(self).received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _token(base: str, user: str, password: str) -> str:
    req = urllib.request.Request(
        f"{base}/auth/token",
        method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"username": user, "password": password}).encode(),
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def _run_state(stack, run_id: str, timeout: float = 300) -> str:
    q = urllib.parse.quote(run_id, safe="")
    return wait_until(
        lambda: (s := api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["state"]) in ("success", "failed") and s,
        timeout,
        f"run {run_id} to finish",
    )


def _task_states(stack, run_id: str) -> list[tuple]:
    q = urllib.parse.quote(run_id, safe="")
    tis = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances")["task_instances"]
    return sorted((t["task_id"], t["map_index"], t["state"]) for t in tis)


def _client(url):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    return make_client(Settings(opensearch_url=url))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, opensearch_url):
    home = tmp_path_factory.mktemp("airflow_stack")
    seeds = home / "seeds"
    shutil.copytree(SAMPLE_SEEDS, seeds)
    index = f"stack-{uuid.uuid4().hex[:8]}"
    hook = type("Hook", (_Hook,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "SEEDNEWS_STACK_HOME": str(home / "stack"),
        "SEEDNEWS_AIRFLOW_PORT": str(free_port()),
        "SEEDNEWS_AIRFLOW_PASSWORD": f"pw-{uuid.uuid4().hex[:12]}",
        "OPENSEARCH_URL": opensearch_url,
        "SEEDNEWS_SEED_DIR": str(seeds),  # the nightly run's folder (and the form's default)
        "SEEDNEWS_INDEX": f"{index}-nightly",  # a scheduled run's alias (none is due), apart from the manual runs'
        "SEEDNEWS_ALERT_WEBHOOK": f"http://127.0.0.1:{server.server_address[1]}/alerts",
        "SEEDNEWS_REPORT_DIR": str(home / "reports"),
        "SEEDNEWS_MIN_BATCH_FILES": "1",  # so the two-file folder still makes two batches (the mapped path)
    }
    t0 = time.monotonic()
    up = subprocess.run([str(ROOT / "scripts" / "stack"), "up"], env=env, capture_output=True, text=True, timeout=600)
    started = time.monotonic() - t0
    try:
        assert up.returncode == 0, (up.stdout + up.stderr)[-5000:]
        print(f"\nstack up in {started:.1f}s:\n{up.stdout}")
        state = json.loads((home / "stack" / "stack.json").read_text())
        user, password = "admin", env["SEEDNEWS_AIRFLOW_PASSWORD"]
        base = state["base_url"]
        yield {
            "base": base,
            "home": home,
            "seeds": seeds,
            "index": index,
            "url": opensearch_url,
            "user": user,
            "password": password,
            "token": _token(base, user, password),
            "hook": hook,
            "state": state,
            "stdout": up.stdout,
        }
    finally:
        subprocess.run([str(ROOT / "scripts" / "stack"), "down", "--purge"], env=env, capture_output=True, timeout=180)
        server.shutdown()
        client = _client(opensearch_url)
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        for name in (index, f"{index}-nightly", f"{index}-ui", f"{index}-bad"):
            client.indices.delete_index_template(name=name, ignore=[404])


def test_stack_runs_on_postgres_with_login_required(stack):
    assert (
        "postgresql+psycopg2://"
        in subprocess.run(
            [str(ROOT / "scripts" / "stack"), "env"],
            env={**os.environ, "SEEDNEWS_STACK_HOME": str(stack["home"] / "stack")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        api(stack, f"/api/v2/dags/{DAG_ID}", token=None)
    assert err.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as err:
        _token(stack["base"], stack["user"], "wrong-password")
    assert err.value.code == 401
    dag = api(stack, f"/api/v2/dags/{DAG_ID}")
    assert dag["is_paused"] is False
    assert "02:00 UTC" in dag["description"]
    assert stack["password"] not in stack["stdout"]  # a password given by env is never printed


def test_param_schema_for_the_form(stack):
    params = api(stack, f"/api/v2/dags/{DAG_ID}/details")["params"]
    for name, p in params.items():
        types = p["schema"]["type"] if isinstance(p["schema"]["type"], list) else [p["schema"]["type"]]
        assert set(types) <= {"string", "boolean", "integer", "number", "null"}, name  # scalar form fields
        assert p["schema"]["title"] and p["description"], name
        if p["value"] in ("", None):  # optional: must be nullable, or the UI form marks it missing
            assert "null" in types, name
        if "boolean" in types:  # a switch: nullable too, or the UI form shows it as required
            assert types == ["boolean", "null"], name
    assert params["seed_dir"]["value"] == str(stack["seeds"])


def test_conf_the_params_reject_is_refused_with_the_reason(stack):
    for conf, reason in (
        ({"max_batches": 0}, "0 is less than the minimum of 1"),
        ({"index": "Bad Name"}, "does not match"),
        ({"max_quarantined_pct": 250}, "greater than the maximum"),
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})
        detail = json.loads(err.value.read())["detail"]
        assert err.value.code == 400 and reason in detail and "Invalid input for param" in detail, detail


def test_run_triggered_through_the_api_succeeds_and_indexes(stack):
    conf = {"seed_dir": str(stack["seeds"]), "index": stack["index"], "skip_images": True, "max_batches": 2}
    run = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})
    state = _run_state(stack, run["dag_run_id"])
    summary = _task_states(stack, run["dag_run_id"])
    assert state == "success", summary
    assert summary == [
        ("finalize", -1, "success"),
        ("plan", -1, "success"),
        ("process_batch", 0, "success"),
        ("process_batch", 1, "success"),
    ]
    # plan's own summary is in the task body, before Airflow folds the rest into "Post Execute"; no task
    # log carries opensearch-py's per-request lines
    events = _log_events(stack, run["dag_run_id"], "plan")
    summary = next(i for i, e in enumerate(events) if " seed files: " in e and " to process in " in e)
    assert summary < events.index("::group::Post Execute"), events
    for task_id in ("plan", "finalize"):
        assert not [e for e in _log_events(stack, run["dag_run_id"], task_id) if "[status:200" in e], task_id
    from pipeline.stores import indices

    client = _client(stack["url"])
    client.indices.refresh(index=stack["index"])
    assert indices.count(client, stack["index"]) == 2
    assert dict(indices.facet(client, stack["index"], "topics")) == {"AI": 2, "Computer Vision": 1}
    # the Markdown report, and the Asset event saying when the index was refreshed
    reports = list((stack["home"] / "reports").glob("seednews-manual__*.md"))
    assert any("| indexed | 2 |" in r.read_text() for r in reports)
    events = api(stack, "/api/v2/assets/events?limit=50")["asset_events"]
    assert any(e["source_run_id"] == run["dag_run_id"] and e["extra"].get("alias") == stack["index"] for e in events)


def test_a_run_with_nothing_to_process_ends_in_plan(stack):
    """A quiet night (every file unchanged) is finished by ``plan``: the batch task and ``finalize`` are
    skipped, and the run still gets its report as a note and its Asset event."""
    conf = {"seed_dir": str(stack["seeds"]), "index": f"{stack['index']}-quiet", "skip_images": True}
    runs = []
    for _ in range(2):
        run = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})
        assert _run_state(stack, run["dag_run_id"]) == "success", _task_states(stack, run["dag_run_id"])
        runs.append(run["dag_run_id"])
    assert _task_states(stack, runs[1]) == [
        ("finalize", -1, "skipped"),
        ("plan", -1, "success"),
        ("process_batch", -1, "skipped"),
    ]
    q = urllib.parse.quote(runs[1], safe="")
    note = wait_until(lambda: api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["note"], 60, "the run's note")
    assert "| unchanged | 2 |" in note and "verdict: **success**" in note, note
    events = api(stack, "/api/v2/assets/events?limit=50")["asset_events"]
    mine = [e for e in events if e["source_run_id"] == runs[1]]
    assert [(e["source_task_id"], e["extra"]["counts"]) for e in mine] == [("plan", {"unchanged": 2})], mine


def test_first_start_runs_nothing_and_the_next_run_is_the_next_0200(stack):
    """Seen: ``stack up`` at 14:40 ran ``scheduled__<today>T02:00`` at once. Unpaused and scheduled, the
    first start now waits for the next 02:00 UTC (the DAG doc says so)."""
    from datetime import UTC, datetime, timedelta

    dag = wait_until(
        lambda: (d := api(stack, f"/api/v2/dags/{DAG_ID}"))["next_dagrun_run_after"] and d,
        120,
        "the DAG's next run",
    )
    now = datetime.now(UTC)
    next_run = datetime.fromisoformat(dag["next_dagrun_run_after"].replace("Z", "+00:00"))
    expected = now.replace(hour=2, minute=0, second=0, microsecond=0)
    expected += timedelta(days=1) if expected <= now else timedelta()
    assert dag["is_paused"] is False and next_run == expected, (dag["next_dagrun_run_after"], now)
    time.sleep(15)  # a few scheduler loops: still no scheduled run
    runs = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
    assert [r["dag_run_id"] for r in runs if r["run_type"] == "scheduled"] == []
    assert "After a deployment** nothing runs at once: the first run is the next 02:00 UTC" in _doc(stack)
    assert f"first run {dag['next_dagrun_run_after']}" in stack["stdout"]  # ./scripts/stack up says when


def _doc(stack) -> str:
    return api(stack, f"/api/v2/dags/{DAG_ID}/details")["doc_md"]


def _log_lines(stack, run_id: str, task_id: str) -> list[dict]:
    """The structured lines of a task's first try, from the REST API."""
    q = urllib.parse.quote(run_id, safe="")
    content = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances/{task_id}/logs/1?full_content=true")
    return [m for m in content["content"] if isinstance(m, dict)]


def _log_events(stack, run_id: str, task_id: str) -> list[str]:
    return [m["event"] for m in _log_lines(stack, run_id, task_id)]


def _error_lines(stack, run_id: str, task_id: str) -> list[str]:
    """The ERROR lines of a task's first try, as the UI's "Recent Failed Task Logs" filters them."""
    return [m["event"] for m in _log_lines(stack, run_id, task_id) if m.get("level") == "error"]


def _all_quarantined_run(stack) -> dict:
    """Triggers a run on a folder of three bad seed files (each run its own folder) and waits for it."""
    bad = stack["home"] / f"bad-seeds-{uuid.uuid4().hex[:6]}"
    bad.mkdir()
    for name in ("invalid_yaml.txt", "missing_title.txt", "no_frontmatter.txt"):
        shutil.copy(DATA / "seeds" / "bad" / name, bad / name)
    conf = {"seed_dir": str(bad), "index": f"{stack['index']}-bad", "skip_images": True}
    run = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})
    assert _run_state(stack, run["dag_run_id"]) == "failed"
    return run


def test_all_quarantined_run_fails_and_alerts_a_person(stack):
    run = _all_quarantined_run(stack)
    assert ("finalize", -1, "failed") in _task_states(stack, run["dag_run_id"])
    # the reason, in one ERROR line of the failed task's log (not only inside a traceback)
    errors = _error_lines(stack, run["dag_run_id"], "finalize")
    assert any(e.startswith("finalize failed, not retried: 3 of 3 seed files quarantined (100%)") for e in errors), (
        errors
    )
    msgs = wait_until(
        lambda: [m for m in stack["hook"].received if m.get("run_id") == run["dag_run_id"]], 60, "the alert"
    )
    text = msgs[0]["text"]
    assert f"DAG {DAG_ID}" in text and run["dag_run_id"] in text and "task finalize" in text, text
    assert "3 of 3 seed files quarantined (100%)" in text and "Report:" in text, text
    # the run's note is the report, saying why the run failed
    note = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}")["note"]
    assert "verdict: **failed: 3 of 3 seed files quarantined (100%)" in note, note


# ------------------------------------------------------------------ a real browser
def _browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def _login(page, stack):
    page.goto(f"{stack['base']}/auth/login?next=" + urllib.parse.quote(f"/dags/{DAG_ID}", safe=""))
    try:
        page.locator("input[name=username]").wait_for(timeout=90_000)
    except Exception:
        _shot(page, "00-login-page-missing")
        raise
    page.locator("input[name=username]").fill(stack["user"])
    page.locator("input[name=password]").fill(stack["password"])
    _shot(page, "01-login")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("trigger-dag-button").wait_for(timeout=60_000)


def _login_and_open_form(page, stack):
    _login(page, stack)
    _shot(page, "02-dag")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for()
    return dialog


def _number_input(page, param: str):
    target = page.locator(f"[id='number-input:element_{param}:inc']").get_attribute("aria-controls")
    return page.locator(f"[id='{target}']")


def test_browser_trigger_form_defaults_trigger_and_success(stack):
    pw, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialog = _login_and_open_form(page, stack)
        submit = page.get_by_test_id("trigger-dag-submit")
        _shot(page, "03-trigger-form-defaults")
        # every default untouched: nothing flagged, Trigger enabled
        assert dialog.locator("[aria-invalid='true']").count() == 0
        assert dialog.get_by_text("This field is required").count() == 0
        assert submit.is_enabled()
        # no switch carries the red "required *" mark; one turned on and off again is still accepted
        for name in ("full_rebuild", "skip_images", "dry_run", "replay_dead_letters", "allow_mass_delete"):
            row = dialog.locator(f"input[name=element_{name}]").locator("xpath=ancestor::*[@data-scope='field'][1]")
            assert row.locator("[data-part='required-indicator']").count() == 0, name
        dry_run = dialog.locator("input[name=element_dry_run]").locator("xpath=..")
        dry_run.click()
        dry_run.click()
        assert dialog.get_by_text("This field is required").count() == 0 and submit.is_enabled()
        # change Params: our own alias, no image checks, one batch
        dialog.locator("input[name=element_index]").fill(f"{stack['index']}-ui")
        dialog.locator("input[name=element_skip_images]").locator("xpath=..").click()
        batches = _number_input(page, "max_batches")
        batches.fill("1")
        batches.press("Tab")
        _shot(page, "04-trigger-form-changed")
        assert submit.is_enabled()
        submit.click()
        page.wait_for_url("**/runs/**", timeout=30_000)
        run_id = urllib.parse.unquote(page.url.rstrip("/").split("/runs/")[1].split("/")[0])
        assert _run_state(stack, run_id) == "success", _task_states(stack, run_id)
        q = urllib.parse.quote(run_id, safe="")
        conf = api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["conf"]
        assert conf["index"] == f"{stack['index']}-ui" and conf["skip_images"] is True and conf["max_batches"] == 1
        # the report is the run's note: set by finalize through the REST API (connection seednews_airflow_api)
        note = wait_until(lambda: api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["note"], 60, "the run's note")
        assert note.startswith(f"# seednews run `{run_id}`") and "| indexed | 2 |" in note, note
        assert "| AI | 2 |" in note and len(note) <= 1000, note
        page.reload()
        page.get_by_text("success").first.wait_for(timeout=30_000)  # the UI shows the run's state
        # the note's first line under the run's header, rendered: a heading, not "# seednews run"
        page.get_by_role("heading", name="seednews run").first.wait_for(timeout=30_000)
        _shot(page, "05-run-succeeded")
        # opened ("Edit note" opens it read-only first), the note is the whole report rendered from Markdown
        page.get_by_role("button", name="Edit note").first.click()
        modal = page.get_by_role("dialog")  # the markdown-modal test id sits on a Dialog.Root, which has no element
        modal.get_by_role("heading", name="seednews run").first.wait_for(timeout=30_000)
        assert modal.get_by_role("heading", name="Files per outcome").count() == 1
        modal.get_by_role("cell", name="indexed", exact=True).first.wait_for(timeout=10_000)
        assert modal.get_by_role("cell", name="AI", exact=True).count() == 1
        assert "# seednews run" not in modal.inner_text()  # rendered, not the Markdown source
        _shot(page, "05b-run-report-as-note")
        page.keyboard.press("Escape")
        client = _client(stack["url"])
        client.indices.refresh(index=f"{stack['index']}-ui")
        from pipeline.stores import indices

        assert indices.count(client, f"{stack['index']}-ui") == 2
    finally:
        browser.close()
        pw.stop()


def test_browser_wrong_values_are_refused(stack):
    pw, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialog = _login_and_open_form(page, stack)
        submit = page.get_by_test_id("trigger-dag-submit")
        # a required value removed: the reason next to the field, Trigger disabled
        seed = dialog.locator("input[name=element_seed_dir]")
        seed.fill("")
        seed.press("Tab")
        field = seed.locator("xpath=ancestor::*[@data-scope='field'][1]")
        field.get_by_text("This field is required").wait_for(timeout=10_000)
        assert not submit.is_enabled()
        _shot(page, "06-required-field-missing")
        seed.fill(str(stack["seeds"]))
        seed.press("Tab")
        # max_batches=0: the number field does not keep a value below the Param's minimum (1)
        batches = _number_input(page, "max_batches")
        batches.fill("0")
        batches.press("Tab")
        assert batches.input_value() == "1"
        _shot(page, "07-max-batches-clamped")
        # an index name OpenSearch would refuse: the api-server refuses the run, the UI says so
        before = len(api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"])
        dialog.locator("input[name=element_index]").fill("Bad Name")
        submit.click()
        page.get_by_text("Failed to Trigger Dag").first.wait_for(timeout=15_000)
        _shot(page, "08-bad-index-refused")
        assert len(api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]) == before
    finally:
        browser.close()
        pw.stop()


def test_browser_a_failed_runs_reason_is_on_the_dag_overview(stack):
    """The DAG's Overview lists the ERROR lines of recently failed tasks: the reason is one click away."""
    run = _all_quarantined_run(stack)
    pw, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _login(page, stack)  # lands on the DAG's Overview
        page.get_by_text("Recent Failed Task Logs").wait_for(timeout=60_000)
        page.get_by_role("button", name="Show Logs").first.click()
        page.get_by_text("finalize failed, not retried: 3 of 3 seed files quarantined").first.wait_for(timeout=30_000)
        _shot(page, "09-failed-run-reason-on-overview")
        q = urllib.parse.quote(run["dag_run_id"], safe="")
        page.goto(f"{stack['base']}/dags/{DAG_ID}/runs/{q}")
        page.get_by_text("finalize").first.wait_for(timeout=30_000)
        _shot(page, "10-failed-run-page")
    finally:
        browser.close()
        pw.stop()
