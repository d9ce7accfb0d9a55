from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class SocialItsmConfig(AppConfig):
    name = "socialitsm"
    verbose_name = "SocialITSM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing checks registers the system checks; receivers connects the notifications.
        from . import checks, db, receivers  # noqa: F401
        from .management import sla_defaults_notice
        from .middleware import time_zone_on_login

        post_migrate.connect(sla_defaults_notice, sender=self)
        # Chat posts and log context are side effects of committed changes, not business flow:
        # they listen to the app's signals (socialitsm/signals.py) and Celery's task signals.
        from . import logcontext, signals
        from .services import chat

        signals.incident_event.connect(chat.on_incident_event, dispatch_uid="socialitsm-chat-incident-event")
        signals.channel_alert.connect(chat.on_channel_alert, dispatch_uid="socialitsm-chat-channel-alert")
        logcontext.celery_connect()
        user_logged_in.connect(time_zone_on_login, dispatch_uid="socialitsm-time-zone-on-login")
        connection_created.connect(db.clamp_timestamps, dispatch_uid="socialitsm-clamp-timestamps")
