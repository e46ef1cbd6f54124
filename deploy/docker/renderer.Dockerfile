# Room Snapshots renderer: WeasyPrint's libraries and the fonts it needs, non-root.
FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir uv
WORKDIR /src
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY renderer-service renderer-service
COPY api-service/pyproject.toml api-service/pyproject.toml
RUN uv sync --frozen --no-dev --no-editable --package snapshot-renderer

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig curl \
      fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --home /app snapshots
COPY --from=build /src/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH SNAPSHOT_RENDERER_METRICS_HOST=0.0.0.0 \
    SNAPSHOT_RENDERER_STORE_DIR=/var/lib/snapshots/store
USER snapshots
WORKDIR /app
EXPOSE 9100
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD curl -fs http://127.0.0.1:9100/healthz || exit 1
CMD ["snapshot-renderer"]
