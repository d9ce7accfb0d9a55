from django.apps import AppConfig


class SocialItsmConfig(AppConfig):
    name = "socialitsm"
    verbose_name = "SocialITSM"
    default_auto_field = "django.db.models.BigAutoField"
