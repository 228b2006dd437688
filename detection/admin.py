"""Admin page of the learned-model versions, with the promotion action (shadow → active)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from detection.models import DetectorVersion
from detection.versions import version_promote


@admin.register(DetectorVersion)
class DetectorVersionAdmin(admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("version", "status", "sha256", "created_at", "promoted_at")
    list_filter = ("status",)
    readonly_fields = ("version", "weights_path", "sha256", "status", "evaluation", "created_at", "promoted_at")
    actions = ["promote"]

    @admin.action(description="Promote the selected version to active (the current one is retired)")
    def promote(self, request: Any, queryset: Any) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return
        row = version_promote(version=queryset.get().version)
        self.message_user(request, f"{row.version} is now active; new scores use it for priority.")
