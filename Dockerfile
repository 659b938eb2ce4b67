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
# What the spec.compute engines need in the materialization pod (the engines default to this
# image): ray[data] for engine ray, ray[default] for the RayCluster head's dashboard / Jobs API that
# kubeRay submits each run to (also the offline store of engine kubernetes' export; its version
# must equal spec.compute.ray.kubeRay.rayVersion's default, RayCluster pods run this image too) and
# the kubernetes client with which Feast's k8s and spark_application engines create their objects.
# Not included: pyspark (~320 MB, and a JVM) for engine sparkApplication, whose offline store
# imports it; add it for such an image, e.g. --build-arg FEAST_COMPUTE_PACKAGES="... pyspark==4.0.1"
# (Feast's own spark_application image is the usual choice). Empty: Feast only (~240 MB smaller).
ARG FEAST_COMPUTE_PACKAGES="ray[data,default]==2.60.0 kubernetes==37.0.1"
# gcsfs: the file offline store reads the offline data of provider gcp from the store's bucket
# (gs://) through fsspec, and Feast's gcp extra does not bring it (found by the first run on real
# pods: "Install gcsfs to access Google Storage"). Its version must match the fsspec pip picks.
ARG FEAST_GCS_PACKAGES="gcsfs==2025.12.0 fsspec==2025.12.0"

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
COPY --from=wheel /wheels/ /wheels/
RUN /opt/venv/bin/pip install /wheels/featurestore_operator-*.whl \
 # the operator must stay lean: fail the build if Feast slipped in through a dependency
 && ! /opt/venv/bin/python -c "import feast" 2>/dev/null \
 && /opt/venv/bin/featurestore-operator --help >/dev/null

# ----------------------------------------------------------------------------- feast runtime
FROM base AS feast-venv
ARG FEAST_VERSION
ARG FEAST_COMPUTE_PACKAGES
ARG FEAST_GCS_PACKAGES
# set -f: the package list is split into words but never globbed (ray[data])
RUN set -f && python -m venv /opt/feast \
 && /opt/feast/bin/pip install "feast[redis,gcp,grpcio]==${FEAST_VERSION}" ${FEAST_GCS_PACKAGES} ${FEAST_COMPUTE_PACKAGES} \
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
