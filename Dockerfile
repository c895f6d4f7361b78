# Brain AI images: one Dockerfile, two targets, each installing its own distribution.
#
#   docker build --target engine   -t brain-ai/engine:0.1.0 .
#   docker build --target operator -t brain-ai/operator:0.1.0 .
#
# The default base is the public Python image. Offline, `make images` (e2e/images/build.sh) builds
# a Debian bookworm base with debootstrap, passes it as BASE_IMAGE, puts a wheelhouse built on the
# host into the build context (wheelhouse/) and sets PIP_NO_INDEX=1: nothing is fetched while
# building. The file works with BuildKit and with the classic builder alike.
#
# The base must provide python3 (>= 3.11) with the venv module; the final stages add nothing but
# the virtual environment and an unprivileged user: no compiler, no pip.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# Each image installs its own distribution (engine/ or operator/, plus common/) into a virtual
# environment: the engine image carries no Kubernetes client, the operator image no search stack.
FROM ${BASE_IMAGE} AS build
# 1 = install only from wheelhouse/ (offline builds); 0 = wheelhouse first, then the index.
ARG PIP_NO_INDEX=0
ENV PIP_NO_INDEX=${PIP_NO_INDEX} \
    PIP_FIND_LINKS=/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# wheelhous[e] matches the optional wheelhouse/ directory without failing when it is absent
# (pyproject.toml keeps the source list non-empty for the classic builder; pip ignores it there).
COPY pyproject.toml wheelhous[e] /wheels/
COPY common/pyproject.toml /src/common/
COPY engine/pyproject.toml /src/engine/
COPY operator/pyproject.toml /src/operator/
# Prints the third-party requirements of the distributions named, with the extras named after a
# colon (engine:tools), so dependencies install from the pyproject files alone and a source change
# does not reinstall them.
RUN printf '%s\n' \
      'import sys, tomllib' \
      'for arg in sys.argv[1:]:' \
      '    name, _, extras = arg.partition(":")' \
      '    project = tomllib.load(open(f"/src/{name}/pyproject.toml", "rb"))["project"]' \
      '    wanted = list(project["dependencies"])' \
      '    for extra in filter(None, extras.split(",")):' \
      '        wanted += project["optional-dependencies"][extra]' \
      '    print("\n".join(r for r in wanted if not r.startswith("brain-ai-")))' \
      > /usr/local/bin/requirements.py \
 && python3 -m venv /opt/brain-ai

FROM build AS build-engine
RUN python3 /usr/local/bin/requirements.py common engine:tools > /tmp/requirements.txt \
 && /opt/brain-ai/bin/pip install --requirement /tmp/requirements.txt
COPY common /src/common
COPY engine /src/engine
# pip and setuptools leave the environment (nothing imports them at run time).
RUN /opt/brain-ai/bin/pip install --no-deps /src/common /src/engine \
 && /opt/brain-ai/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/brain-ai/bin/python -c "import brainai_engine.api.app, brainai_engine.cli, brainai_engine.tools.demo" \
 && ! /opt/brain-ai/bin/python -c "import kopf" 2>/dev/null

FROM build AS build-operator
RUN python3 /usr/local/bin/requirements.py common operator > /tmp/requirements.txt \
 && /opt/brain-ai/bin/pip install --requirement /tmp/requirements.txt
COPY common /src/common
COPY operator /src/operator
RUN /opt/brain-ai/bin/pip install --no-deps /src/common /src/operator \
 && /opt/brain-ai/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/brain-ai/bin/python -c "import brainai_operator.handlers" \
 && ! /opt/brain-ai/bin/python -c "import faiss" 2>/dev/null \
 && /opt/brain-ai/bin/brain-ai-operator --version

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/brain-ai/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
# uid/gid 10001: the operator's engine Deployment runs the container as 10001 with a read-only
# root filesystem; /var/lib/brain-ai (data) and /tmp are the only writable paths there.
RUN groupadd --system --gid 10001 brainai \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/brain-ai --no-create-home \
      --shell /usr/sbin/nologin brainai \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/brain-ai \
 && install -d -m 0755 /etc/brain-ai
WORKDIR /var/lib/brain-ai
USER 10001:10001

# ---------------------------------------------------------------------------------------------
FROM runtime AS operator
COPY --from=build-operator /opt/brain-ai /opt/brain-ai
# Declared after the last layer: a new revision relabels the image without rebuilding one.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Brain AI"
LABEL org.opencontainers.image.title="brain-ai-operator" \
      org.opencontainers.image.description="Kubernetes operator for BrainAICluster resources"
# 8080: liveness (/healthz); 8081: Prometheus metrics.
EXPOSE 8080 8081
ENTRYPOINT ["brain-ai-operator"]
CMD ["run"]

# ---------------------------------------------------------------------------------------------
# Last stage: the default target.
FROM runtime AS engine
COPY --from=build-engine /opt/brain-ai /opt/brain-ai
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Brain AI"
LABEL org.opencontainers.image.title="brain-ai-engine" \
      org.opencontainers.image.description="Brain AI memory and concept engine (HTTP API)"
ENV BRAINAI_HEALTH_URL=http://127.0.0.1:8080/health
EXPOSE 8080
# curl is not in the image; the engine's own Python answers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['BRAINAI_HEALTH_URL'], timeout=4).status == 200 else 1)"]
# The operator passes `serve --config /etc/brain-ai/engine.toml` as args; without args the
# engine serves its defaults on 0.0.0.0:8080 with data in /var/lib/brain-ai.
ENTRYPOINT ["brain-ai-engine"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/var/lib/brain-ai"]
