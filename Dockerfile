# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir "uv>=0.5"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY openapi ./openapi
COPY api ./api
RUN uv sync --locked --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app guichet
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 GUICHET_DATA_DIR=/app/data
RUN mkdir -p /app/data && chown guichet /app/data
USER guichet
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# one uvicorn worker per core the container may use (its cpuset; a CPU quota is not seen:
# then add "--workers", "N"), one with the embedded PostgreSQL
CMD ["guichet", "serve", "--host", "0.0.0.0", "--port", "8000"]
