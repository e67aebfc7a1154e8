# tradingstate: one image for the `web` (gunicorn) and `trading` (recovery, ticker, cluster)
# services of docker-compose.yml. Static files are collected at build; whitenoise serves them.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRADINGSTATE_STATIC_ROOT=/app/static \
    PATH=/app/.venv/bin:$PATH

WORKDIR /app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# dependencies first (cached while pyproject.toml is unchanged); the venv is where
# `python manage.py` and scripts/*.py look for Django (tradingstate/venv.py)
COPY pyproject.toml ./
RUN python -m venv /app/.venv && /app/.venv/bin/pip install --no-compile .

COPY --chown=app:app . .
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
        python manage.py collectstatic --noinput -v 0 \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /app/data/logs \
    && chown -R app:app /app/data /app/static

USER app
EXPOSE 8000
CMD ["gunicorn", "tradingstate.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-", "--limit-request-line", "8190"]
