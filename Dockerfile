# syntax=docker/dockerfile:1
#
# Two images from one Dockerfile:
#
#   docker build -t featurestore-operator:dev .                              # the operator (default target)
#   docker build --target feast-runtime -t featurestore-feast:0.67.0 .      # Feast workloads
#
# The operator image holds ONLY the operator and its client libraries (kopf, kubernetes, Google
# Cloud clients): no Feast, so it stays small and starts fast. The Feast workloads it creates
# (feature server, registry server, `feast apply` Jobs, materialization CronJobs) run the
# feast-runtime image (`images.feast` in the Helm chart, FSO_FEAST_IMAGE).
#
# Base image: an exact Python patch release on Debian bookworm. For reproducible production builds
# also pin its digest, e.g.
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm   # -> sha256:...
#   docker build --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG FEAST_VERSION=0.67.0
# Python dependencies are locked with hashes (hack/lock-images.sh, uv): images/operator.lock (from
# pyproject.toml) and images/feast-runtime.lock (from images/feast-runtime.in, which lists Feast, its
# GCS filesystem and what the compute engines need). Each venv installs its lock with
# `pip install --require-hashes --no-deps` and then proves the lock is not stale: the operator wheel
# installs offline (--no-index) only if the lock satisfies pyproject.toml, feast-runtime.in installs
# offline only if the lock satisfies it, and `pip check` finds no broken requirement.

# ----------------------------------------------------------------------------- base
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The unprivileged user every image runs as (numeric in USER, so runAsNonRoot can verify it).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin app

# ----------------------------------------------------------------------------- operator: wheel
FROM base AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /wheels .

# ----------------------------------------------------------------------------- operator: venv
FROM base AS operator-venv
RUN python -m venv /opt/venv
COPY images/operator.lock /locks/
COPY --from=wheel /wheels/ /wheels/
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /locks/operator.lock \
 && /opt/venv/bin/pip install --no-index /wheels/featurestore_operator-*.whl \
 && /opt/venv/bin/pip check \
 # the operator must stay lean: fail the build if Feast slipped in through a dependency
 && ! /opt/venv/bin/python -c "import feast" 2>/dev/null \
 && /opt/venv/bin/featurestore-operator --help >/dev/null

# ----------------------------------------------------------------------------- feast runtime
FROM base AS feast-venv
ARG FEAST_VERSION
COPY images/feast-runtime.in images/feast-runtime.lock /locks/
RUN python -m venv /opt/feast \
 && /opt/feast/bin/pip install --require-hashes --no-deps -r /locks/feast-runtime.lock \
 && /opt/feast/bin/pip install --no-index -r /locks/feast-runtime.in \
 && /opt/feast/bin/pip check \
 && /opt/feast/bin/python -c "import importlib.metadata as m, sys; v = m.version('feast'); sys.exit(None if v == '${FEAST_VERSION}' else f'feast {v} locked, FEAST_VERSION is ${FEAST_VERSION}')" \
 && /opt/feast/bin/feast version \
 && /opt/feast/bin/python -c "import fsspec; fsspec.filesystem('gs', token='anon')"

FROM base AS feast-runtime
ARG FEAST_VERSION
LABEL org.opencontainers.image.title="feast-runtime" \
      org.opencontainers.image.description="Feast ${FEAST_VERSION} (redis, gcp, compute engines) for featurestore-operator workloads"
COPY --from=feast-venv /opt/feast /opt/feast
# HOME=/tmp: pods run with a read-only root filesystem and an emptyDir on /tmp.
ENV PATH=/opt/feast/bin:$PATH \
    HOME=/tmp \
    FEAST_USAGE=False
WORKDIR /tmp
USER 10001:10001
# The operator sets command/args per workload (feast serve, apply, materialize-incremental, ...).
CMD ["feast", "version"]

# ----------------------------------------------------------------------------- operator (default)
FROM base AS operator
LABEL org.opencontainers.image.title="featurestore-operator" \
      org.opencontainers.image.description="Kubernetes operator running Feast feature stores for Kubeflow"
COPY --from=operator-venv /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp
WORKDIR /tmp
USER 10001:10001
# 8080: liveness (/healthz), 9090: Prometheus metrics (FSO_HEALTH_PORT / FSO_METRICS_PORT).
EXPOSE 8080 9090
ENTRYPOINT ["featurestore-operator", "run"]
