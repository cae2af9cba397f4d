import pytest

from pipeline.config import (
    ConfigError,
    Settings,
    parse_bool,
    redact_url,
    settings_from_connection,
    split_credentials,
)


def test_credentials_in_the_url_are_split_out_and_never_shown():
    s = Settings.from_env({"OPENSEARCH_URL": "https://reader:s3cr3t@search.internal:9200"})
    assert s.opensearch_url == "https://search.internal:9200"
    assert (s.username, s.password) == ("reader", "s3cr3t")
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(s)


def test_env_credentials_win_and_defaults_are_local():
    s = Settings.from_env({"OPENSEARCH_USER": "u", "OPENSEARCH_PASSWORD": "p", "OPENSEARCH_VERIFY_CERTS": "false"})
    assert (s.opensearch_url, s.username, s.password, s.verify_certs) == ("http://127.0.0.1:9200", "u", "p", False)
    assert (s.alias, s.ledger_index, s.deadletter_index) == (
        "seednews-articles",
        "seednews-articles-ledger",
        "seednews-articles-deadletter",
    )


# ---------------------------------------------------------------- URL credentials


def test_url_credentials_are_percent_decoded():
    url, user, password = split_credentials("https://svc%40corp:p%23ss%2Fw%3Frd@search.internal:9200")
    assert (url, user, password) == ("https://search.internal:9200", "svc@corp", "p#ss/w?rd")


@pytest.mark.parametrize(
    "raw",
    [
        "https://reader:pa#ss@search.internal:9200",
        "https://reader:pa/ss@search.internal:9200",
        "https://reader:pa?ss@search.internal:9200",
        "https://reader:123/ss@search.internal:9200",
    ],
)
def test_unsplittable_url_is_refused_with_the_password_masked(raw):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"OPENSEARCH_URL": raw})
    message = str(err.value)
    assert "reader:***@search.internal:9200" in message and "%23" in message
    assert "ss@" not in message.replace("***@", "")


def test_redact_url():
    assert redact_url("https://u:s3cr3t@h:9200/x") == "https://u:***@h:9200/x"
    assert redact_url("https://h:9200") == "https://h:9200"


def test_cli_never_prints_a_password(capsys, monkeypatch):
    from pipeline import cli

    monkeypatch.setenv("OPENSEARCH_URL", "https://reader:pa#ss@127.0.0.1:1")
    assert cli.main(["run", "examples/seeds", "--dry-run"]) == 2
    out = capsys.readouterr()
    assert "pa#ss" not in out.out + out.err and "reader:***@127.0.0.1:1" in out.err


# ---------------------------------------------------------------- booleans and connections
@pytest.mark.parametrize(
    "value,expected",
    [
        (False, False),
        (True, True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("true", True),
        ("1", True),
        ("YES", True),
        (0, False),
        (1, True),
        (None, True),
    ],
)
def test_parse_bool(value, expected):
    assert parse_bool(value, default=True) is expected


def test_parse_bool_refuses_typos():
    with pytest.raises(ConfigError, match="not a boolean"):
        parse_bool("flase", name="extra.verify_certs")


def test_env_verify_certs_false_words():
    for word in ("false", "0", "no", "off"):
        assert Settings.from_env({"OPENSEARCH_VERIFY_CERTS": word}).verify_certs is False
    assert Settings.from_env({}).verify_certs is True


def test_settings_from_an_opensearch_connection():
    s = settings_from_connection(
        "search.internal",
        9201,
        None,
        "svc",
        "p#w",
        {"use_ssl": "true", "verify_certs": "false", "ca_certs": "/ca.pem", "timeout": "12"},
        env={"SEEDNEWS_INDEX": "idx", "OPENSEARCH_URL": "http://elsewhere:1"},
    )
    assert (s.opensearch_url, s.username, s.password, s.verify_certs, s.ca_certs, s.timeout, s.index_base) == (
        "https://search.internal:9201",
        "svc",
        "p#w",
        False,
        "/ca.pem",
        12.0,
        "idx",
    )
    assert "p#w" not in repr(s)


def test_connection_defaults_verify_on_and_http():
    s = settings_from_connection("127.0.0.1", None, None, None, None, {}, env={})
    assert (s.opensearch_url, s.username, s.verify_certs) == ("http://127.0.0.1:9200", None, True)
    # http conn type: schema carries the scheme; a host given as URL keeps its scheme
    assert settings_from_connection("h", 9200, "https", extra={}, env={}).opensearch_url == "https://h:9200"
    assert (
        settings_from_connection("https://h:9443", extra={"verify_certs": False}, env={}).opensearch_url
        == "https://h:9443"
    )
    assert settings_from_connection("h", 9200, extra={"verify_certs": False}, env={}).verify_certs is False
    assert settings_from_connection("h", 9200, extra={"verify_certs": "no"}, env={}).verify_certs is False


def test_connection_refuses_nonsense():
    with pytest.raises(ConfigError, match="no host"):
        settings_from_connection("", env={})
    with pytest.raises(ConfigError, match="not a boolean"):
        settings_from_connection("h", extra={"verify_certs": "maybe"}, env={})
