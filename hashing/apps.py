from django.apps import AppConfig


class HashingConfig(AppConfig):
    name = "hashing"
    verbose_name = "Hash banks"
    default_auto_field = "django.db.models.BigAutoField"
