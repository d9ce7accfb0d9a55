"""Test settings: the real ORM and database, eager Celery, fast hashing.

DATABASE_URL and CELERY_BROKER_URL, when set, point the suite at PostgreSQL and Redis.
"""

import os

# A developer's .env (written by `make run`) must not make local runs differ from CI.
os.environ.setdefault("SOCIALITSM_ENV_FILE", "")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("SOCIALITSM_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

from .settings import *  # noqa: F403
from .settings import DATABASES

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
SOCIALITSM_ENCRYPTION_KEYS = ["m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE="]
# Rate limits off and counted in this process; tests of a limit set its rate and clear the cache.
CACHES["throttle"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
SOCIALITSM_THROTTLE_RATES = dict.fromkeys(SOCIALITSM_THROTTLE_RATES)  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405
