from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SocialItsmConfig(AppConfig):
    name = "socialitsm"
    verbose_name = "SocialITSM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, db  # noqa: F401  (importing checks registers the system checks)

        connection_created.connect(db.clamp_timestamps, dispatch_uid="socialitsm-clamp-timestamps")
