"""Hash, read and parse one discovered seed file in one call: what a run does for one file, without the
run (tests and benchmarks; the pipeline itself reads through ``pipeline.sources`` and ``run.seedpath``)."""

from __future__ import annotations

from pipeline.sources.folder import hash_seed, read_seed
from pipeline.stages.parse import ParseConfig, parse_bytes
from pipeline.types import SeedFile, SeedOutcome, SeedRecord


def parse_seed(seed: SeedFile, config: ParseConfig = ParseConfig()) -> SeedRecord | SeedOutcome:
    hashed = hash_seed(seed, config.max_bytes) if not seed.sha256 else seed
    if isinstance(hashed, SeedOutcome):
        return hashed
    data = read_seed(hashed, config.max_bytes)
    if isinstance(data, SeedOutcome):
        return data
    return parse_bytes(hashed, data, config)
