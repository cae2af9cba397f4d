"""Settings for a cluster: several node URLs (validated, never printed with a password), the client's
retry sizing, replica policy and the health wait. The health and replica tests use the session's single
node (conftest); the real multi-node behaviour is in tests/test_cluster.py."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from pipeline.config import ConfigError, Settings, settings_from_connection
from pipeline.stores.client import make_client


# ---------------------------------------------------------------- several URLs
def test_a_comma_separated_list_gives_a_client_that_knows_every_node():
    s = Settings.from_env({"OPENSEARCH_URL": " https://u:p%2Cw@n1:9200 , https://n2:9201,https://n3:9202"})
    assert s.opensearch_urls == ("https://n1:9200", "https://n2:9201", "https://n3:9202")
    assert (s.username, s.password) == ("u", "p,w")
    assert s.display_url == "https://n1:9200,https://n2:9201,https://n3:9202"
    client = make_client(s)
    pool = client.transport.connection_pool
    assert sorted(c.host for c in pool.connections) == ["https://n1:9200", "https://n2:9201", "https://n3:9202"]
    assert pool.dead_timeout == s.dead_timeout and client.transport.max_retries == s.max_retries
    assert tuple(client.transport.retry_on_status) == (502, 503, 504) and client.transport.retry_on_timeout


def test_one_url_still_works_as_before():
    s = Settings.from_env({"OPENSEARCH_URL": "localhost:9200"})
    assert s.opensearch_urls == ("http://localhost:9200",)
    assert type(make_client(s).transport.connection_pool).__name__ == "DummyConnectionPool"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("http://n1:9200,,http://n2:9200", "empty entry"),
        ("http://n1:9200,", "empty entry"),
        ("http://n1:9200,https://n2:9200", "mixes http and https"),
        ("http://n1:9200,http://n1:9200", "entry 2 of 2 repeats an earlier node"),
        ("http://n1:9200,ftp://n2:9200", "scheme must be http or https"),
        ("http://n1:9200,http://:9200", "has no host"),
        ("https://a:s3cr3t@n1:9200,https://b:0ther@n2:9200", "different credentials"),
    ],
)
def test_bad_lists_are_refused_clearly(raw, message):
    with pytest.raises(ConfigError, match=message) as err:
        Settings.from_env({"OPENSEARCH_URL": raw})
    assert "s3cr3t" not in str(err.value) and "0ther" not in str(err.value)


def test_a_raw_comma_in_a_password_never_shows_any_of_it():
    for raw in ("https://svc:pa,ss@n1:9200,https://svc:pa,ss@n2:9200", "https://svc:s3,cr3t@n1:9200"):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({"OPENSEARCH_URL": raw})
        text = str(err.value)
        assert "%2C" in text and "ss@" not in text and "s3" not in text and "cr3t" not in text, text


def test_numbers_and_words_are_checked():
    s = Settings.from_env(
        {
            "OPENSEARCH_MAX_RETRIES": "5",
            "OPENSEARCH_DEAD_TIMEOUT": "10",
            "OPENSEARCH_SNIFF": "yes",
            "SEEDNEWS_REPLICAS": "1",
            "SEEDNEWS_HEALTH_STATUS": "GREEN",
            "SEEDNEWS_HEALTH_TIMEOUT": "30",
        }
    )
    assert (s.max_retries, s.dead_timeout, s.sniff, s.replicas, s.health_status, s.health_timeout) == (
        5,
        10.0,
        True,
        "1",
        "green",
        30.0,
    )
    assert Settings.from_env({"SEEDNEWS_REPLICAS": "auto"}).replicas is None
    assert Settings.from_env({"SEEDNEWS_REPLICAS": "0-all"}).replicas == "0-all"
    for env, message in [
        ({"OPENSEARCH_MAX_RETRIES": "three"}, "not a whole number"),
        ({"OPENSEARCH_TIMEOUT": "-1"}, "must not be negative"),
        ({"SEEDNEWS_REPLICAS": "one"}, "not a replica count"),
        ({"SEEDNEWS_REPLICAS": "2-1"}, "ends below its start"),
        ({"SEEDNEWS_HEALTH_STATUS": "red"}, "not one of yellow, green"),
        ({"OPENSEARCH_SNIFF": "maybe"}, "not a boolean"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Settings.from_env(env)


def test_an_airflow_connection_may_list_the_nodes():
    s = settings_from_connection(
        "n1,n2:9201,n3", 9200, None, "svc", "pw", {"use_ssl": True, "sniff": "false", "dead_timeout": "15"}, env={}
    )
    assert s.opensearch_urls == ("https://n1:9200", "https://n2:9201", "https://n3:9200")
    assert (s.username, s.sniff, s.dead_timeout) == ("svc", False, 15.0)
    with pytest.raises(ConfigError, match="empty entry"):
        settings_from_connection("n1,,n3", 9200, env={})


def test_sniffing_is_opt_in():
    assert Settings().sniff is False
    client = make_client(
        replace(Settings(opensearch_url="http://127.0.0.1:1,http://127.0.0.1:2"), sniff=True), sniff_on_start=False
    )  # (nothing listens there: only the wiring is checked)
    assert client.transport.sniff_on_connection_fail and client.transport.sniffer_timeout == 60


# ---------------------------------------------------------------- replicas and health, on the session node
def test_single_node_indices_auto_expand_to_no_replica_and_are_green(settings, client, seed_dir):
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions

    report = run(settings, RunOptions(seed_dir=str(seed_dir), check_images=False), client=client, emit=lambda _: None)
    assert report.ok
    rows = client.cat.indices(index=f"{settings.index_base}*", format="json", h="index,rep,health")
    assert rows and {r["rep"] for r in rows} == {"0"} and {r["health"] for r in rows} == {"green"}, rows


def test_pinned_replicas_on_one_node_make_the_run_wait_for_yellow_and_still_succeed(settings, client, seed_dir):
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions

    pinned = replace(settings, replicas="1", health_timeout=30)
    report = run(pinned, RunOptions(seed_dir=str(seed_dir), check_images=False), client=client, emit=lambda _: None)
    assert report.ok and report.indexed == 2
    rows = client.cat.indices(index=f"{settings.index_base}*", format="json", h="index,rep,health")
    names = {r["index"] for r in rows}
    assert any(n.endswith("-deadletter") for n in names), names  # created up front, with the pinned count
    assert {r["rep"] for r in rows} == {"1"} and {r["health"] for r in rows} == {"yellow"}, rows


def test_health_wait_is_bounded_and_says_what_is_missing(settings, client):
    from pipeline.errors import ClusterNotReady
    from pipeline.stores.health import wait_for_health

    name = f"{settings.index_base}-red"
    client.indices.create(
        index=name,
        body={"settings": {"number_of_replicas": 0, "index.routing.allocation.require._name": "no-such-node"}},
    )
    started = time.monotonic()
    with pytest.raises(ClusterNotReady, match=r"not yellow after 2s .* status red, 1 nodes, 1 shards unassigned"):
        wait_for_health(client, replace(settings, health_timeout=2), [name])
    assert time.monotonic() - started < 15
