# syntax=docker/dockerfile:1
# One image, two entry points:
#   docker run IMAGE operator --signing-key ...   (the control plane; see charts/modelroute)
#   docker run IMAGE sidecar  --listen ...        (injected into application pods)
# Multi-stage: the builder makes a wheel of this repository and installs it into a virtualenv
# with every dependency pinned by requirements.lock (used as constraints: only the runtime
# dependencies get installed, at exactly the locked versions; the dev tools it also pins do
# not); the final stage is a slim Python with only that virtualenv, no compilers, no source
# tree, running as an unprivileged user. Bytecode is compiled at both optimization levels: the
# injected sidecar runs with PYTHONOPTIMIZE=2 (no docstrings in memory) on a read-only root
# filesystem, where it could not write its own.

ARG PYTHON_VERSION=3.11.14
ARG HATCHLING_VERSION=1.33.0
# Any image with python3.11, `python` and pip; machines without a registry build one from
# Debian packages (hack/local-cluster images: mmdebstrap) and pass it here.
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG HATCHLING_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/modelroute \
    && python -m pip install "hatchling==${HATCHLING_VERSION}"
COPY requirements.lock pyproject.toml README.md ./
COPY api ./api
COPY cli ./cli
COPY sidecar ./sidecar
COPY operator ./operator
COPY testing ./testing
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/modelroute/bin/pip install --constraint requirements.lock /wheels/modelroute-*.whl \
    && /opt/modelroute/bin/pip check \
    && /opt/modelroute/bin/python -m compileall -q -o 0 -o 2 /opt/modelroute/lib \
    && for o in "" -OO; do PYTHONDONTWRITEBYTECODE= /opt/modelroute/bin/python $o -c "import modelroute.sidecar.providers.gemini"; done
# (the last line writes google-genai's string-annotation code caches, providers/leandefs.py: the root is read-only)

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="modelroute" \
      org.opencontainers.image.description="Kubernetes-native routing for small LLMs: operator and sidecar" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/modelroute/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed numeric UID/GID so Kubernetes can verify runAsNonRoot (the chart uses 10001).
RUN groupadd --system --gid 10001 modelroute \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/modelroute --create-home \
       --shell /usr/sbin/nologin modelroute
COPY --from=builder /opt/modelroute /opt/modelroute
# Not the source tree (there is none here): nothing named `operator/` shadows the stdlib.
WORKDIR /home/modelroute
USER 10001:10001
EXPOSE 8787 8788 9090 9443
ENTRYPOINT ["modelroute"]
CMD ["--help"]
