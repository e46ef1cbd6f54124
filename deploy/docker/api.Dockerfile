# syntax=docker/dockerfile:1
# Room Snapshots API: multi-stage; uv installs exactly what uv.lock pins for the snapshot-api
# package (and snapshot-shared), nothing of the renderer; runs as a non-root user.
# Build from the repository root: docker build -f deploy/docker/api.Dockerfile .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# The virtual environment is built where it will run: console scripts keep this path.
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# Dependencies first (a layer that survives source edits). uv needs every workspace member's
# pyproject.toml to check the lock file, but installs only the package named.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY api-service/pyproject.toml api-service/pyproject.toml
COPY renderer-service/pyproject.toml renderer-service/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package snapshot-api
COPY shared shared
COPY api-service api-service
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package snapshot-api

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home snapshots \
    && mkdir -p /var/lib/snapshots/store /var/lib/snapshots/store-uses \
    && chown snapshots:snapshots /var/lib/snapshots/store /var/lib/snapshots/store-uses
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc \
    SNAPSHOT_API_HOST=0.0.0.0 \
    SNAPSHOT_API_PORT=8000 \
    SNAPSHOT_API_STORE_DIR=/var/lib/snapshots/store \
    SNAPSHOT_API_STORE_USES_DIR=/var/lib/snapshots/store-uses \
    SNAPSHOT_API_LOG_FORMAT=json
USER snapshots:snapshots
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["snapshot-api", "serve"]
