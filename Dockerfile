# syntax=docker/dockerfile:1
# One image for web, worker, beat and stream (see docker-compose.yml): the socialitsm wheel and
# the demo project's settings, run as a non-root user, no compilers or build tools inside.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the wheel, and a virtualenv with it and the project's runtime dependencies ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md CHANGELOG.md requirements.txt ./
COPY socialitsm ./socialitsm
# requirements.txt's exact versions constrain every package installed (pip's constraints take no
# extras, so "celery[redis]==5.7.0" becomes "celery==5.7.0"); its test tools are not installed.
RUN sed -E 's/\[[^]]*\]//' requirements.txt > /tmp/constraints.txt \
    && python -m pip wheel --no-deps --wheel-dir /tmp/dist . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --constraint /tmp/constraints.txt \
        "$(ls /tmp/dist/socialitsm-*.whl)[postgres,redis,docs,demo]" \
        django-environ gunicorn whitenoise django-axes \
    && /opt/venv/bin/pip check

# --- run ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SOCIALITSM_VAR_DIR=/app/var \
    SOCIALITSM_ENV_FILE= \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000

RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --home-dir /app/var --no-create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays root-owned and read-only for the app user; only var/ is writable.
COPY manage.py ./
COPY project ./project
# Settings need a SECRET_KEY to load; this one exists only for this build step. DEBUG=0 makes
# whitenoise's compressed, hashed manifest, which the running image serves.
RUN SECRET_KEY=collectstatic-only-not-a-secret DEBUG=0 python manage.py collectstatic --noinput \
    && rm -rf /app/var && mkdir -p /app/var \
    && chown app:app /app/var

USER 1000:1000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=5 CMD ["python", "-m", "project.healthcheck"]
CMD ["gunicorn", "project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--no-control-socket"]
