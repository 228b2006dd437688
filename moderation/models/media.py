"""Media in private storage, its hashes, bank matches and detection results."""

from __future__ import annotations

from django.db import models


class Media(models.Model):
    """Bytes of one image, stored privately, deduplicated by SHA-256."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for processing"
        PROCESSED = "processed", "Processed"
        UNPROCESSABLE = "unprocessable", "Unprocessable"

    class Origin(models.TextChoices):
        UPLOAD = "upload", "Uploaded with a report"
        PLATFORM = "platform", "Fetched from the platform"

    sha256 = models.CharField(max_length=64, unique=True)
    md5 = models.CharField(max_length=32, db_index=True)
    mime = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="media/%Y/%m/", max_length=300, blank=True)
    origin = models.CharField(max_length=20, choices=Origin.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "media"

    def __str__(self) -> str:
        return f"media {self.pk} ({self.sha256[:12]})"


class MediaHash(models.Model):
    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="hashes")
    algorithm = models.CharField(max_length=20)
    value = models.CharField(max_length=128)
    quality = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["media", "algorithm"], name="media_hash_one_per_algorithm")]
        indexes = [models.Index(fields=["algorithm", "value"], name="media_hash_algo_value")]
        ordering = ["algorithm"]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


class Match(models.Model):
    """A media hash within the threshold of a bank entry."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="matches")
    media_hash = models.ForeignKey(MediaHash, on_delete=models.CASCADE, related_name="matches")
    bank_entry = models.ForeignKey("hashing.BankEntry", on_delete=models.CASCADE, related_name="matches")
    algorithm = models.CharField(max_length=20)
    distance = models.PositiveIntegerField()
    threshold = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["media_hash", "bank_entry"], name="match_unique_pair")]
        ordering = ["distance", "id"]
        verbose_name_plural = "matches"

    def __str__(self) -> str:
        return f"{self.algorithm} match at distance {self.distance}"

    @property
    def strength(self) -> float:
        return round(1.0 - self.distance / (self.threshold + 1), 4)


class DetectionResult(models.Model):
    """A synthetic-media score with the signals that explain it, per model version."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="detections")
    model_version = models.CharField(max_length=50)
    score = models.FloatField()
    signals = models.JSONField(default=list)
    summary = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["media", "model_version"], name="detection_one_per_version"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model_version}: {self.score:.2f}"


class VideoFrameHash(models.Model):
    """The PDQ hash of one sampled frame of a video (about one a second); see ``hashing.video``."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="video_frames")
    index = models.PositiveIntegerField()
    timestamp_s = models.FloatField()
    pdq = models.CharField(max_length=64)
    quality = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["media", "index"], name="video_frame_unique_index")]
        ordering = ["media", "index"]

    def __str__(self) -> str:
        return f"frame {self.index} at {self.timestamp_s:.1f} s (quality {self.quality})"


class VideoMatch(models.Model):
    """A video whose frames match a known video in a bank by the vPDQ rule (``hashing.video``)."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="video_matches")
    bank_video = models.ForeignKey("hashing.BankVideo", on_delete=models.CASCADE, related_name="matches")
    query_frames = models.PositiveIntegerField()  # usable frames of this media
    query_matched = models.PositiveIntegerField()  # ... within the radius of a frame of the known video
    stored_frames = models.PositiveIntegerField()  # usable frames of the known video
    stored_matched = models.PositiveIntegerField()  # ... within the radius of a frame of this media
    median_distance = models.PositiveIntegerField()
    radius = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["media", "bank_video"], name="video_match_unique_pair")]
        ordering = ["median_distance", "id"]
        verbose_name_plural = "video matches"

    def __str__(self) -> str:
        return f"video match: {self.query_matched}/{self.query_frames} frames"

    @property
    def query_share(self) -> float:
        return self.query_matched / self.query_frames if self.query_frames else 0.0

    @property
    def stored_share(self) -> float:
        return self.stored_matched / self.stored_frames if self.stored_frames else 0.0
