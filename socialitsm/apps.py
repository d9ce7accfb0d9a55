from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class SocialItsmConfig(AppConfig):
    name = "socialitsm"
    verbose_name = "SocialITSM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, db  # noqa: F401  (importing checks registers the system checks)
        from .management import sla_defaults_notice
        from .middleware import time_zone_on_login

        post_migrate.connect(sla_defaults_notice, sender=self)
        user_logged_in.connect(time_zone_on_login, dispatch_uid="socialitsm-time-zone-on-login")
        connection_created.connect(db.clamp_timestamps, dispatch_uid="socialitsm-clamp-timestamps")
