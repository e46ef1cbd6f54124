# Room Snapshots API: multi-stage, uv with the lock file, only the API's packages, non-root.
FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir uv
WORKDIR /src
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY api-service api-service
COPY renderer-service/pyproject.toml renderer-service/pyproject.toml
RUN uv sync --frozen --no-dev --no-editable --package snapshot-api

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home /app snapshots && apt-get update \
    && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    SNAPSHOT_API_HOST=0.0.0.0 SNAPSHOT_API_STORE_DIR=/var/lib/snapshots/store
USER snapshots
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fs http://127.0.0.1:8000/healthz || exit 1
CMD ["snapshot-api", "serve"]
