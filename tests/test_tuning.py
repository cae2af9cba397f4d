"""``Tuning``: the run's performance knobs, read once at the edge from the same ``SEEDNEWS_*`` variables the
docs name, refused with a message naming the variable, and carried by plain options that pickle as they are."""

from __future__ import annotations

import pickle

import pytest

from pipeline.errors import ConfigError
from pipeline.run import parallel
from pipeline.run.options import RunOptions
from pipeline.run.tuning import (
    DEFAULT_CHUNK_SEEDS,
    DEFAULT_READ_THREADS,
    ENV_CHUNK_SEEDS,
    ENV_OVERLAP_WRITES,
    ENV_PARSE_WORKERS,
    ENV_READ_THREADS,
    Tuning,
)
from pipeline.stores.bulk import BULK_CHUNK, BULK_MAX_BYTES


def test_an_empty_environment_gives_the_defaults():
    assert Tuning.from_env({}) == Tuning()
    assert Tuning.from_env({ENV_CHUNK_SEEDS: "", ENV_OVERLAP_WRITES: "", ENV_PARSE_WORKERS: ""}) == Tuning()
    t = Tuning()
    assert (t.chunk_seeds, t.overlap_writes, t.parse_workers, t.fast_json) == (DEFAULT_CHUNK_SEEDS, True, None, True)
    assert (t.bulk_chunk, t.bulk_max_bytes, t.pause_refresh) == (BULK_CHUNK, BULK_MAX_BYTES, True)
    assert t.read_threads == DEFAULT_READ_THREADS


def test_the_documented_variables_are_read():
    env = {ENV_CHUNK_SEEDS: " 250 ", ENV_OVERLAP_WRITES: "0", ENV_PARSE_WORKERS: "3"}
    assert Tuning.from_env(env) == Tuning(chunk_seeds=250, overlap_writes=False, parse_workers=3)
    assert Tuning.from_env({ENV_PARSE_WORKERS: "AUTO", ENV_OVERLAP_WRITES: "1"}) == Tuning()
    assert Tuning.from_env({ENV_READ_THREADS: "16"}) == Tuning(read_threads=16)
    assert ENV_READ_THREADS == "SEEDNEWS_READ_THREADS"
    assert (ENV_CHUNK_SEEDS, ENV_OVERLAP_WRITES, ENV_PARSE_WORKERS) == (
        "SEEDNEWS_CHUNK_SEEDS",
        "SEEDNEWS_OVERLAP_WRITES",
        "SEEDNEWS_PARSE_WORKERS",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (ENV_CHUNK_SEEDS, "many"),
        (ENV_CHUNK_SEEDS, "0"),
        (ENV_CHUNK_SEEDS, "-5"),
        (ENV_CHUNK_SEEDS, "1.5"),
        (ENV_OVERLAP_WRITES, "maybe"),
        (ENV_PARSE_WORKERS, "lots"),
        (ENV_PARSE_WORKERS, "0"),
        (ENV_READ_THREADS, "0"),
        (ENV_READ_THREADS, "some"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name) as caught:
        Tuning.from_env({name: value})
    assert repr(value) in str(caught.value)


def test_a_bad_field_is_refused_in_code_too():
    with pytest.raises(ConfigError, match="chunk_seeds"):
        Tuning(chunk_seeds=0)
    with pytest.raises(ConfigError, match="parse_workers"):
        Tuning(parse_workers=0)
    with pytest.raises(ConfigError, match="read_threads"):
        Tuning(read_threads=0)


def test_options_are_plain_values_that_pickle_with_their_tuning():
    options = RunOptions(seed_dir="/seeds", tuning=Tuning(chunk_seeds=7, fast_json=False))
    assert pickle.loads(pickle.dumps(options)) == options
    builder = parallel.ChunkBuilder(options, 1)
    assert builder.options is options  # handed to the workers as they are, nothing stripped


def test_workers_follow_the_tuning_for_a_folder_and_an_object_store_alike():
    folder = RunOptions(seed_dir="/seeds", tuning=Tuning(parse_workers=3))
    assert parallel.workers_for(5000, folder) == 3
    assert parallel.workers_for(parallel.MIN_SEEDS_PER_WORKER, folder) == 1
    assert parallel.workers_for(5000, RunOptions(seed_dir="/seeds", tuning=Tuning(parse_workers=1))) == 1
    assert parallel.workers_for(5000, RunOptions(seed_dir="/seeds")) == min(parallel.usable_cores(), 10)
    assert parallel.workers_for(5000, RunOptions(seed_dir="s3://bucket/p", tuning=Tuning(parse_workers=3))) == 3
