"""Fault injection for the isolation tests (tests/test_isolation.py), loaded by every Python process
whose ``PYTHONPATH`` starts with this folder: the CLI, its parse worker processes, Airflow's task
processes. ``normalize`` raises ``IndexError`` for a seed whose title contains ``SEEDNEWS_FAULT_TITLE``:
a bug the pipeline never anticipated, in the middle of the per-seed path, in whichever process runs it."""

import os

_marker = os.environ.get("SEEDNEWS_FAULT_TITLE")
if _marker:
    from pipeline.stages import normalize as _module

    _real = _module.normalize

    def normalize(record):
        if _marker in str(record.fields.get("title", "")):
            raise IndexError("injected fault: string index out of range")
        return _real(record)

    _module.normalize = normalize
