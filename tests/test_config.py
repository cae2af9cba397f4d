from pipeline.config import Settings


def test_credentials_in_the_url_are_split_out_and_never_shown():
    s = Settings.from_env({"OPENSEARCH_URL": "https://reader:s3cr3t@search.internal:9200"})
    assert s.opensearch_url == "https://search.internal:9200"
    assert (s.username, s.password) == ("reader", "s3cr3t")
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(s)


def test_env_credentials_win_and_defaults_are_local():
    s = Settings.from_env({"OPENSEARCH_USER": "u", "OPENSEARCH_PASSWORD": "p", "OPENSEARCH_VERIFY_CERTS": "false"})
    assert (s.opensearch_url, s.username, s.password, s.verify_certs) == ("http://127.0.0.1:9200", "u", "p", False)
    assert (s.alias, s.ledger_index, s.deadletter_index) == (
        "seednews-articles", "seednews-articles-ledger", "seednews-articles-deadletter")
