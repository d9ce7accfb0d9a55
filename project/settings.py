"""Settings for the SocialITSM project, read from the environment.

With nothing configured but SECRET_KEY, the embedded default runs: SQLite under var/ and
kombu's filesystem broker, so no server is needed. DATABASE_URL and CELERY_BROKER_URL switch to
PostgreSQL and Redis. A `.env` file beside manage.py is read first (`make run` writes one).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from socialitsm.celery import QUEUES, beat_schedule, task_routes

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("SOCIALITSM_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
# SOCIALITSM_ENV_FILE names another file; empty skips it (image builds, tests of bare settings).
_env_file = env.str("SOCIALITSM_ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file:
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "socialitsm",
]

MIDDLEWARE = [
    # First: every later log line of the request carries its id (X-Request-ID honoured).
    "socialitsm.logcontext.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "socialitsm.middleware.TimezoneMiddleware",
    "project.security.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str) -> dict:
    db = environ.Env.db_url_config(url)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web, worker and beat processes read while one writes; IMMEDIATE takes the
        # write lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
        db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    else:
        db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        db["CONN_HEALTH_CHECKS"] = True
        # PostgreSQL's JIT compiles large plans for seconds to save milliseconds on this app's
        # short queries (it added 1.6-3.4 s to list and report queries on a year of data).
        if env.bool("DATABASE_JIT", default=False) is False:
            db.setdefault("OPTIONS", {})["options"] = "-c jit=off"
    return db


DATABASES = {"default": _database(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'socialitsm.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "socialitsm:queue"
LOGOUT_REDIRECT_URL = "login"

# Notification e-mail: EMAIL_URL as django-environ reads it (smtp://user:pass@host:587,
# smtp+tls://..., consolemail://); without one, the console in DEBUG and the local SMTP server
# otherwise.
_email = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SocialITSM <socialitsm@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Security: safe by default; a TLS-terminating proxy sets SECURE_PROXY_SSL_HEADER.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Health checks reach the container over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Set on every response by project.security; the API docs pages relax style-src (project/urls.py).
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = {
    feature: "()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])
# Webhook batches may carry up to SOCIALITSM_MAX_BATCH posts of SOCIALITSM_MAX_POST_CHARS each.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://socialitsm")}

REST_FRAMEWORK = {
    # Token first so an anonymous request gets 401 with a WWW-Authenticate header, not 403, and
    # so every call counts against its client address and bad tokens are limited (429).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "socialitsm.api.throttling.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["socialitsm.api.permissions.IsAgent"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON with limits (finite numbers, bounded nesting): anything else is a 400 invalid_json.
    "DEFAULT_PARSER_CLASSES": [
        "socialitsm.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "socialitsm.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "socialitsm.api.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["socialitsm.api.throttling.UserRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SocialITSM API",
    "DESCRIPTION": "Incidents opened from social posts: queues, replies to posters, ingest.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["socialitsm.api.permissions.IsAgent"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StateEnum": "socialitsm.models.Incident.State",
        "SlaClockStateEnum": "socialitsm.models.SlaClock.State",
        "PriorityEnum": "socialitsm.models.Incident.Priority",
        "ReplyStatusEnum": "socialitsm.models.Reply.Status",
        "StatusPostStatusEnum": "socialitsm.models.StatusPost.Status",
        "BroadcastStatusEnum": "socialitsm.models.Broadcast.Status",
        "BroadcastVisibilityEnum": "socialitsm.models.Broadcast.Visibility",
        "BroadcastKindEnum": "socialitsm.models.Broadcast.Kind",
        "VisibilityEnum": "socialitsm.models.Reply.Visibility",
    },
}

# Celery: JSON only, bounded tasks, outbound I/O on its own queue.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    for _sub in ("queue", "control", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker logs through LOGGING below (JSON lines with the task id), not Celery's own handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# One queue per kind of work (socialitsm/celery.py, README "More workers"); a worker started
# without -Q consumes them all.
SOCIALITSM_WORKER_QUEUES = ",".join(QUEUES)
CELERY_TASK_ROUTES = task_routes()
# A worker's processes load the classifier before their first task (project/celery.py), which
# can take longer than Celery's default 4 s allowance for a process to start.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE = beat_schedule(
    poll_seconds=env.int("SOCIALITSM_POLL_TICK", default=5),
    itsm_seconds=env.int("SOCIALITSM_ITSM_TICK", default=5),
    reply_seconds=env.int("SOCIALITSM_REPLY_TICK", default=10),
    sla_seconds=env.int("SOCIALITSM_SLA_TICK", default=60),
    recheck_seconds=env.int("SOCIALITSM_RECHECK_TICK", default=300),
    retention_seconds=env.int("SOCIALITSM_RETENTION_TICK", default=3600),
)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Creates the schedule file's folder: with PostgreSQL and Redis nothing else makes var/.
CELERY_BEAT_SCHEDULER = "project.celery:PersistentScheduler"

SOCIALITSM_ENCRYPTION_KEYS = env.list("SOCIALITSM_ENCRYPTION_KEYS", default=[])
SOCIALITSM_DEMO = env.bool("SOCIALITSM_DEMO", default=False)
# Share of an SLA target after which a clock is "at risk" and a warning event is emitted.
SOCIALITSM_SLA_WARN_RATIO = env.float("SOCIALITSM_SLA_WARN_RATIO", default=0.8)
if not 0 < SOCIALITSM_SLA_WARN_RATIO < 1:
    raise ImproperlyConfigured("SOCIALITSM_SLA_WARN_RATIO must be between 0 and 1, e.g. 0.8")
# A reply failing transiently is retried with backoff for this many hours, each wait at most
# SOCIALITSM_REPLY_MAX_BACKOFF seconds; then it is marked failed.
SOCIALITSM_REPLY_RETRY_HOURS = env.float("SOCIALITSM_REPLY_RETRY_HOURS", default=24)
SOCIALITSM_REPLY_MAX_BACKOFF_SECONDS = env.int("SOCIALITSM_REPLY_MAX_BACKOFF", default=900)
if SOCIALITSM_REPLY_RETRY_HOURS < 0 or SOCIALITSM_REPLY_MAX_BACKOFF_SECONDS < 1:
    raise ImproperlyConfigured("SOCIALITSM_REPLY_RETRY_HOURS must be 0 or more, SOCIALITSM_REPLY_MAX_BACKOFF 1 or more")
# Broadcast replies per minute and channel, by network ("mastodon=2,x=1"); networks not named
# keep their defaults (socialitsm/conf.py).


def _broadcast_paces(items: list[str]) -> dict[str, float]:
    paces = {}
    for item in items:
        network, _, rate = item.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = 0.0
        if not network.strip() or not value > 0:
            raise ImproperlyConfigured(
                f"SOCIALITSM_BROADCAST_PER_MINUTE: {item!r} is not network=replies per minute above 0, e.g. mastodon=2"
            )
        paces[network.strip()] = value
    return paces


SOCIALITSM_BROADCAST_PER_MINUTE = _broadcast_paces(env.list("SOCIALITSM_BROADCAST_PER_MINUTE", default=[]))
if env.str("SOCIALITSM_BROADCAST_FIXED_TEXT", default=""):
    SOCIALITSM_BROADCAST_FIXED_TEXT = env.str("SOCIALITSM_BROADCAST_FIXED_TEXT")
# The incident page: who else is viewing (kept this long after their page last asked, asked this
# often), the poster's history per page, and the public-reply guard's phone region and digit run.
SOCIALITSM_PRESENCE_TTL_SECONDS = env.int("SOCIALITSM_PRESENCE_TTL_SECONDS", default=30)
SOCIALITSM_PRESENCE_POLL_SECONDS = env.int("SOCIALITSM_PRESENCE_POLL_SECONDS", default=10)
if not 1 <= SOCIALITSM_PRESENCE_POLL_SECONDS < SOCIALITSM_PRESENCE_TTL_SECONDS:
    raise ImproperlyConfigured(
        "SOCIALITSM_PRESENCE_POLL_SECONDS must be at least 1 and below SOCIALITSM_PRESENCE_TTL_SECONDS"
    )
SOCIALITSM_POSTER_HISTORY_PAGE = env.int("SOCIALITSM_POSTER_HISTORY_PAGE", default=10)
SOCIALITSM_GUARD_PHONE_REGION = env.str("SOCIALITSM_GUARD_PHONE_REGION", default="").upper()
SOCIALITSM_GUARD_DIGIT_RUN = env.int("SOCIALITSM_GUARD_DIGIT_RUN", default=8)
if SOCIALITSM_POSTER_HISTORY_PAGE < 1 or SOCIALITSM_GUARD_DIGIT_RUN < 4:
    raise ImproperlyConfigured(
        "SOCIALITSM_POSTER_HISTORY_PAGE must be at least 1, SOCIALITSM_GUARD_DIGIT_RUN at least 4"
    )
SOCIALITSM_ALLOW_PRIVATE_URLS = env.bool("SOCIALITSM_ALLOW_PRIVATE_URLS", default=False)
SOCIALITSM_SITE_URL = env.str("SOCIALITSM_SITE_URL", default="")
SOCIALITSM_RECHECK_MINUTES = env.int("SOCIALITSM_RECHECK_MINUTES", default=30)
SOCIALITSM_RECHECK_MAX_POSTS = env.int("SOCIALITSM_RECHECK_MAX_POSTS", default=100)
if SOCIALITSM_RECHECK_MINUTES < 1 or SOCIALITSM_RECHECK_MAX_POSTS < 1:
    raise ImproperlyConfigured("SOCIALITSM_RECHECK_MINUTES and SOCIALITSM_RECHECK_MAX_POSTS must be at least 1")
# The queue: an open page asks every QUEUE_POLL_SECONDS whether anything changed (0: no live
# updates); "breaching soon" lists open incidents with a clock due within QUEUE_BREACHING_MINUTES.
SOCIALITSM_QUEUE_POLL_SECONDS = env.int("SOCIALITSM_QUEUE_POLL_SECONDS", default=15)
SOCIALITSM_QUEUE_BREACHING_MINUTES = env.int("SOCIALITSM_QUEUE_BREACHING_MINUTES", default=120)
if SOCIALITSM_QUEUE_POLL_SECONDS < 0 or SOCIALITSM_QUEUE_BREACHING_MINUTES < 1:
    raise ImproperlyConfigured(
        "SOCIALITSM_QUEUE_POLL_SECONDS must be 0 or more, SOCIALITSM_QUEUE_BREACHING_MINUTES at least 1"
    )
# Written by `manage.py socialitsm_train`; workers pick a new file up within seconds.
# Spike detection: this many distinct people complaining about one service within the window
# open a major incident for it; a service's own values (admin, API) take precedence.
SOCIALITSM_SPIKE_DETECTION = env.bool("SOCIALITSM_SPIKE_DETECTION", default=True)
SOCIALITSM_SPIKE_AUTHORS = env.int("SOCIALITSM_SPIKE_AUTHORS", default=5)
SOCIALITSM_SPIKE_WINDOW_MINUTES = env.int("SOCIALITSM_SPIKE_WINDOW_MINUTES", default=15)
if SOCIALITSM_SPIKE_AUTHORS < 2 or not 1 <= SOCIALITSM_SPIKE_WINDOW_MINUTES <= 1440:
    raise ImproperlyConfigured(
        "SOCIALITSM_SPIKE_AUTHORS must be at least 2, SOCIALITSM_SPIKE_WINDOW_MINUTES between 1 and 1440"
    )
SOCIALITSM_MODEL_PATH = env.str("SOCIALITSM_MODEL_PATH", default=str(VAR_DIR / "classify-model.npz"))
# The sentence encoder decides complaints and matches services by their descriptions; false
# leaves the fast n-gram model alone (less memory and CPU, no catalogue matching by meaning).
SOCIALITSM_CLASSIFIER_ENCODER = env.bool("SOCIALITSM_CLASSIFIER_ENCODER", default=True)
SOCIALITSM_DATA_DIR = env.str("SOCIALITSM_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data"))

# Rate limits.
# Counters live in the "throttle" cache: Redis when SOCIALITSM_THROTTLE_CACHE_URL names one, or
# else the broker's Redis (CELERY_BROKER_URL redis://...), so every process counts together;
# without Redis (the embedded default) a local-memory cache, which counts per process.
_throttle_url = env.str(
    "SOCIALITSM_THROTTLE_CACHE_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://")) else "",
)
CACHES["throttle"] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _throttle_url,
        "KEY_PREFIX": "socialitsm",
        # A Redis that does not answer lets calls through (unthrottled) instead of holding them.
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if _throttle_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "socialitsm-throttle"}
)
SOCIALITSM_THROTTLE_CACHE = "throttle"
# The flag that keeps one drain of pending posts queued at a time must be seen by every web and
# worker process: the same Redis; without one, each call that stores posts enqueues a drain.
SOCIALITSM_DRAIN_CACHE = "throttle" if _throttle_url else ""
SOCIALITSM_DRAIN_BELOW = env.int("SOCIALITSM_DRAIN_BELOW", default=100)
SOCIALITSM_DRAIN_BATCH = env.int("SOCIALITSM_DRAIN_BATCH", default=500)
SOCIALITSM_DRAIN_SECONDS = env.int("SOCIALITSM_DRAIN_SECONDS", default=60)
if SOCIALITSM_DRAIN_BELOW < 1 or SOCIALITSM_DRAIN_BATCH < 1 or not 1 <= SOCIALITSM_DRAIN_SECONDS <= 100:
    raise ImproperlyConfigured(
        "SOCIALITSM_DRAIN_BELOW and SOCIALITSM_DRAIN_BATCH must be at least 1, "
        "SOCIALITSM_DRAIN_SECONDS between 1 and 100 (under the task time limit)"
    )
# "<count>/<second|minute|hour|day>"; "off" turns a limit off.
SOCIALITSM_THROTTLE_RATES = {
    scope: (None if value.lower() == "off" else value)
    for scope, value in {
        "ingest": env.str("SOCIALITSM_INGEST_RATE", default="600/minute"),
        "ingest_refused": env.str("SOCIALITSM_INGEST_REFUSED_RATE", default="60/minute"),
        "api_user": env.str("SOCIALITSM_API_USER_RATE", default="600/minute"),
        "api_address": env.str("SOCIALITSM_API_ADDRESS_RATE", default="1200/minute"),
        "api_auth_failure": env.str("SOCIALITSM_API_AUTH_FAILURE_RATE", default="20/minute"),
    }.items()
}
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed, e.g. 10.0.0.0/8.
SOCIALITSM_TRUSTED_PROXIES = env.list("SOCIALITSM_TRUSTED_PROXIES", default=[])

# Login lockout (django-axes) for the web and admin logins: after AXES_FAILURE_LIMIT wrong
# passwords for one account from one client address, that pair is refused (429) for the cool-off;
# other addresses still log in, and a success clears the count. API tokens are limited by the
# per-address rate of bad tokens instead.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as django-axes requires
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The cool-off runs from the failure that locked: a try while locked does not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "socialitsm.ratelimit.client_address"
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"

# Operations. Metrics (/metrics): a scraper's bearer token, or the addresses/networks allowed
# without one. Listening alerts: stream fall backs per window, token expiry warning, low quota.
SOCIALITSM_METRICS_TOKEN = env.str("SOCIALITSM_METRICS_TOKEN", default="")
SOCIALITSM_METRICS_ALLOW = env.list("SOCIALITSM_METRICS_ALLOW", default=[])
SOCIALITSM_STREAM_FALLBACK_ALERTS = env.int("SOCIALITSM_STREAM_FALLBACK_ALERTS", default=3)
SOCIALITSM_STREAM_FALLBACK_WINDOW_MINUTES = env.int("SOCIALITSM_STREAM_FALLBACK_WINDOW_MINUTES", default=60)
SOCIALITSM_TOKEN_EXPIRY_WARN_DAYS = env.int("SOCIALITSM_TOKEN_EXPIRY_WARN_DAYS", default=7)
SOCIALITSM_QUOTA_LOW_RATIO = env.float("SOCIALITSM_QUOTA_LOW_RATIO", default=0.1)
SOCIALITSM_HEARTBEAT_STALE_SECONDS = env.int("SOCIALITSM_HEARTBEAT_STALE_SECONDS", default=300)
SOCIALITSM_READY_TIMEOUT = env.float("SOCIALITSM_READY_TIMEOUT", default=2.0)
if not 0 < SOCIALITSM_QUOTA_LOW_RATIO < 1 or SOCIALITSM_STREAM_FALLBACK_ALERTS < 1 or SOCIALITSM_READY_TIMEOUT <= 0:
    raise ImproperlyConfigured(
        "SOCIALITSM_QUOTA_LOW_RATIO must be between 0 and 1, SOCIALITSM_STREAM_FALLBACK_ALERTS at least 1, "
        "SOCIALITSM_READY_TIMEOUT above 0"
    )

# One JSON object per line in production, plain text in development (DEBUG, or LOG_FORMAT=plain);
# each line carries the request id, task id, channel and incident number where known.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "socialitsm.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"},
        "json": {"()": "socialitsm.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
