# Appended to the settings.py that `django-admin startproject` wrote: what the install guide
# (README, "Installing into an existing Django project") tells a host project to add.
INSTALLED_APPS += [  # noqa: F821
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "accounts",
    "socialitsm",
]
MIDDLEWARE += ["django_htmx.middleware.HtmxMiddleware"]  # noqa: F821
AUTH_USER_MODEL = "accounts.Member"
LOGIN_URL = "login"
ALLOWED_HOSTS = ["testserver", "localhost"]

SOCIALITSM = {
    "ENCRYPTION_KEYS": ["m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE="],
    "SITE_URL": "https://desk.example.com",
}

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"

from socialitsm.celery import beat_schedule  # noqa: E402

CELERY_BEAT_SCHEDULE = beat_schedule()
