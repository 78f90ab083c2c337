# Orderlens on a server PostgreSQL (DATABASE_URL); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    ORDERLENS_DATA_DIR=/home/orderlens/.orderlens

# A fixed numeric uid/gid, so that USER resolves without the image's /etc/passwd
# (Kubernetes runAsNonRoot checks the number) and volume ownership is predictable.
RUN groupadd --gid 10001 orderlens \
    && useradd --uid 10001 --gid 10001 --create-home orderlens
WORKDIR /app

COPY pyproject.toml uv.lock README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY data ./data
# The versions of uv.lock, as `make run` and CI install them, into /app/.venv; the project
# editable, so that migrations/ and data/ are found beside the package. The files stay
# root's: the service only reads them, and writes nothing but its data directory.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    PATH=/app/.venv/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.9 \
    && uv sync --locked --python /usr/local/bin/python

USER 10001:10001
EXPOSE 8000
# Exec form, no shell: app.health.check reads PORT itself and asks /readyz (database
# reachable, schema migrated), not just whether the process answers.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-m", "app.health.check"]

# `orderlens serve` waits for the database, applies migrations, then serves.
CMD ["orderlens", "serve"]
