from django.apps import AppConfig
from django.conf import settings


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Detection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from detection.embedding import threads_set  # numpy and Pillow only: ONNX Runtime loads on first use
        from detection.learned.registry import session_threads_set  # numpy only: no torch, no ONNX Runtime

        session_threads_set(getattr(settings, "TAKEDOWN_DETECTOR_THREADS", 1))
        threads_set(getattr(settings, "TAKEDOWN_DETECTOR_THREADS", 1))
