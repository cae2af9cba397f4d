"""The habits CI keeps: ruff (lint and format) and mypy pass on the whole tree, configured in
pyproject.toml and pinned in requirements.lock. ``./scripts/lint --fix`` repairs what ruff can."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

COMMANDS = {
    "ruff check": [str(BIN / "ruff"), "check", "--no-cache", "."],
    "ruff format --check": [str(BIN / "ruff"), "format", "--check", "--no-cache", "."],
    "mypy": [str(BIN / "mypy")],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_tree_is_clean(name):
    if not (BIN / COMMANDS[name][0].rsplit("/", 1)[-1]).exists():
        pytest.fail(f"{name}: not installed in {BIN} (./scripts/setup installs the lint extra from the lock)")
    done = subprocess.run(COMMANDS[name], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{name} found problems (./scripts/lint --fix repairs ruff's):\n{done.stdout[-6000:]}{done.stderr[-2000:]}"
    )
