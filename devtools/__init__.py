"""Development and test tooling: never shipped in the wheel and never imported by ``pipeline``.

``devtools.localnode`` obtains and runs a real OpenSearch node on 127.0.0.1 without Docker (tests, the
README quick start, benchmarks). The runtime package talks to whatever ``OPENSEARCH_URL`` names.
"""
