# Orderlens on a server PostgreSQL (DATABASE_URL); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    ORDERLENS_DATA_DIR=/home/orderlens/.orderlens

RUN useradd --create-home --uid 10001 orderlens
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY data ./data
# Editable, so that migrations/ and data/ are found beside the package.
RUN pip install -e . && chown -R orderlens:orderlens /app

USER orderlens
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"

# Waits for the database, applies migrations, then serves.
CMD ["orderlens", "serve"]
