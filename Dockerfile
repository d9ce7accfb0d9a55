# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SOCIALITSM_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --home-dir /app/var --no-create-home app

COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays root-owned and read-only for the app user; only var/ is writable.
COPY . .
# Settings need a SECRET_KEY to load; this one exists only for this build step. DEBUG=0 makes
# whitenoise's compressed, hashed manifest, which the running image serves.
RUN SECRET_KEY=collectstatic-only-not-a-secret SOCIALITSM_ENV_FILE= DEBUG=0 \
        python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--no-control-socket"]
