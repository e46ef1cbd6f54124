# syntax=docker/dockerfile:1
# Room Snapshots renderer: multi-stage; uv installs exactly what uv.lock pins for the
# snapshot-renderer package; the runtime image adds WeasyPrint's Debian libraries and the fonts
# the templates need (Latin, CJK, Arabic/Hebrew, emoji); runs as a non-root user.
# Build from the repository root: docker build -f deploy/docker/renderer.Dockerfile .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY api-service/pyproject.toml api-service/pyproject.toml
COPY renderer-service/pyproject.toml renderer-service/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package snapshot-renderer
COPY shared shared
COPY renderer-service renderer-service
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package snapshot-renderer

FROM ${PYTHON_IMAGE}
# WeasyPrint: Pango (with HarfBuzz, including its subsetter for font embedding) and fontconfig.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig \
       fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home snapshots \
    && mkdir -p /var/lib/snapshots/store /var/lib/snapshots/store-uses \
    && chown snapshots:snapshots /var/lib/snapshots/store /var/lib/snapshots/store-uses
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/tmp/cache \
    SNAPSHOT_RENDERER_METRICS_HOST=0.0.0.0 \
    SNAPSHOT_RENDERER_METRICS_PORT=9100 \
    SNAPSHOT_RENDERER_STORE_DIR=/var/lib/snapshots/store \
    SNAPSHOT_RENDERER_STORE_USES_DIR=/var/lib/snapshots/store-uses \
    SNAPSHOT_RENDERER_LOG_FORMAT=json
USER snapshots:snapshots
WORKDIR /app
EXPOSE 9100
# /healthz fails when the worker pool cannot render or the AMQP connection is down.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9100/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["snapshot-renderer"]
