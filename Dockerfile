# Brain AI images: one Dockerfile, two targets.
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
COPY pyproject.toml /src/
# Dependencies first, from pyproject.toml alone: a source change does not reinstall them.
RUN python3 -m venv /opt/brain-ai \
 && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && /opt/brain-ai/bin/pip install --requirement /tmp/requirements.txt
COPY README.md /src/
COPY engine /src/engine
COPY operator /src/operator
# Then the project; pip and setuptools leave the environment (nothing imports them at run time).
RUN /opt/brain-ai/bin/pip install --no-deps /src \
 && /opt/brain-ai/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/brain-ai/bin/python -c "import brainai_engine.app, brainai_engine.engine, brainai_operator.handlers" \
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
COPY --from=build /opt/brain-ai /opt/brain-ai
# Declared after the last RUN: a new revision relabels the image without rebuilding a layer.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Brain AI"
WORKDIR /var/lib/brain-ai
USER 10001:10001

# ---------------------------------------------------------------------------------------------
FROM runtime AS operator
LABEL org.opencontainers.image.title="brain-ai-operator" \
      org.opencontainers.image.description="Kubernetes operator for BrainAICluster resources"
# 8080: liveness (/healthz); 8081: Prometheus metrics.
EXPOSE 8080 8081
ENTRYPOINT ["brain-ai-operator"]
CMD ["run"]

# ---------------------------------------------------------------------------------------------
# Last stage: the default target.
FROM runtime AS engine
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
