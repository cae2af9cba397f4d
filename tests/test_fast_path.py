"""Differential test: the fast path (libyaml event parser, the ASCII gate in front of ftfy, orjson bulk
bodies) gives byte-identical documents and identical outcomes to the plain path (pure-Python YAML,
ftfy on every human string, the client's json.dumps), over a generated corpus and the hostile one."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import ftfy
import pytest

from tests.conftest import DATA, ROOT

sys.path.insert(0, str(ROOT / "bench"))

from corpus import generate

from devtools.seedfile import parse_seed
from pipeline.safety import yamlrust, yamlsafe
from pipeline.sources.folder import discover
from pipeline.stages import normalize as nz
from pipeline.stages.normalize import normalize
from pipeline.stages.textfix import HUMAN_TEXT, Fixed
from pipeline.stores import bulk as ix
from pipeline.types import SeedOutcome


def reference_fix_text(text: str, config: ftfy.TextFixerConfig = HUMAN_TEXT) -> Fixed:
    """``textfix.fix_text`` without its cheap gate: ftfy sees every string."""
    fixed, explanation = ftfy.fix_and_explain(text, config)
    if fixed == text:
        return Fixed(text, ())
    return Fixed(fixed, tuple(f"{action}:{arg}" for action, arg in (explanation or [])))


_MARK = re.compile(r"at line \d+, column \d+")


def _run(folder: Path) -> dict[str, str]:
    """Every file's result as one string: its document (sorted JSON) or its outcome."""
    seeds, refused = discover(folder)
    out = {o.seed.rel: f"refused {o.stage}: {o.reason}" for o in refused}
    for s in seeds:
        got = parse_seed(s)
        if not isinstance(got, SeedOutcome):
            got = normalize(got)
        if isinstance(got, SeedOutcome):
            reason = got.reason or ""
            if got.stage == "yaml":
                # libyaml and PyYAML word the same syntax error differently ("did not find expected
                # key" / "expected <block end>"); the outcome, the stage and the position agree
                reason = " ".join(_MARK.findall(reason)[-1:]) or reason
            out[s.rel] = f"{got.state} {got.stage}: {reason}"
        else:
            out[s.rel] = json.dumps(got.source, sort_keys=True) + f" repairs={got.repairs!r} version={got.version}"
    return out


def _plain(monkeypatch) -> None:
    monkeypatch.setattr(yamlrust, "yaml_rs", None)  # no Rust path (load_pure below skips it anyway)
    monkeypatch.setattr(yamlsafe, "load", yamlsafe.load_pure)
    monkeypatch.setattr(nz, "fix_text", reference_fix_text)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    info = generate(folder, 300, seed=7)
    assert info.mojibake and info.broken and info.duplicates  # the corpus has the damage it promises
    return folder


def test_rust_path_changes_no_document_or_outcome(corpus, monkeypatch):
    """``load`` with and without yaml-rs over the generated corpus: byte-identical documents and
    outcomes, and most files took the Rust path (the share is printed with -s)."""
    taken = []
    real = yamlrust.load_rust

    def counting(text):
        value = real(text)
        taken.append(value is not yamlrust.FALLBACK)
        return value

    monkeypatch.setattr(yamlrust, "load_rust", counting)
    with_rust = _run(corpus)
    took = taken[:]  # the run without yaml-rs below counts as fallbacks: leave it out
    with monkeypatch.context() as m:
        m.setattr(yamlrust, "yaml_rs", None)
        without = _run(corpus)
    assert with_rust == without and with_rust
    share = sum(took) / len(took)
    print(f"\n{sum(took)} of {len(took)} front matters ({share:.1%}) took the Rust path")
    assert share > 0.9


@pytest.mark.parametrize("which", ["generated", "bad", "good"])
def test_fast_path_gives_identical_documents_and_outcomes(which, corpus, monkeypatch):
    folder = corpus if which == "generated" else DATA / "seeds" / which
    fast = _run(folder)
    with monkeypatch.context() as m:
        _plain(m)
        plain = _run(folder)
    assert fast.keys() == plain.keys() and fast
    differing = [k for k in fast if fast[k] != plain[k]]
    assert not differing, (
        f"{len(differing)} files differ, first {differing[0]}:\n{fast[differing[0]]}\n{plain[differing[0]]}"
    )
    if which == "generated":
        assert sum(v.startswith("{") for v in fast.values()) > 250
        assert sum("decode:utf-8" in v for v in fast.values()) > 10  # mojibake was repaired


def test_bulk_bodies_are_the_clients_json(corpus):
    """orjson's ``_source`` is the same text the client's serializer would send."""
    from opensearchpy.serializer import JSONSerializer

    pytest.importorskip("orjson")
    ser = JSONSerializer()
    seeds, _ = discover(corpus)
    docs = [normalize(r) for s in seeds if not isinstance(r := parse_seed(s), SeedOutcome)]
    for d in docs:
        src = {**d.source, "indexed_at": "2026-01-01T00:00:00Z"}
        body = ix.source_body(src)
        assert isinstance(body, str)
        assert body == ser.dumps(src)
    assert ix.source_body({"x": "\ud800"}) == {"x": "\ud800"}  # what orjson refuses goes the old way
    assert ix.source_body({"x": 1 << 70}) == {"x": 1 << 70}


def test_fast_and_plain_runs_leave_the_same_index(corpus, opensearch_url, monkeypatch):
    """End to end against the node: same outcome counts, same stored documents."""
    from pipeline.config import Settings
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions
    from pipeline.run.tuning import Tuning
    from pipeline.stores.client import make_client

    stored, reports = [], []
    client = make_client(Settings(opensearch_url=opensearch_url))
    bases = [f"fast-{uuid.uuid4().hex[:8]}", f"plain-{uuid.uuid4().hex[:8]}"]
    try:
        for base in bases:
            with monkeypatch.context() as m:
                plain = base.startswith("plain")
                if plain:
                    _plain(m)
                settings = Settings(opensearch_url=opensearch_url, index_base=base)
                tuning = Tuning(fast_json=not plain)  # plain: bulk bodies by the client's json.dumps
                report = run(
                    settings,
                    RunOptions(seed_dir=str(corpus), check_images=False, full_rebuild=True, tuning=tuning),
                    client=client,
                    emit=lambda msg: None,
                )
            reports.append(report.counts)
            hits = client.search(index=base, body={"size": 1000, "query": {"match_all": {}}})["hits"]["hits"]
            docs = {h["_id"]: {k: v for k, v in h["_source"].items() if k not in ("indexed_at",)} for h in hits}
            stored.append({i: json.dumps(d, sort_keys=True) for i, d in docs.items()})
            settings_now = client.indices.get_settings(index=base)
            # the rebuild's paused refresh is given back: the template's interval (30 s), not -1
            assert [s["settings"]["index"]["refresh_interval"] for s in settings_now.values()] == ["30s"]
        assert reports[0] == reports[1] and reports[0]["indexed"] > 250
        assert stored[0] == stored[1]
    finally:
        for base in bases:
            client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
            client.indices.delete_index_template(name=base, ignore=[404])
            client.indices.delete_index_template(name=f"{base}-ledger", ignore=[404])
