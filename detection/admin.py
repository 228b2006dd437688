"""Admin page of the learned-model versions (artefact network and embedding probe), their figures, and the
promotion action (shadow → active). Promotion is a person's decision: the action names them, and the
moderation app writes it to the audit log (`detection.versions.detector_promoted`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from detection.models import DetectorVersion
from detection.versions import version_promote


def figures(evaluation: dict[str, Any]) -> str:
    """The headline figures of a version's evaluation in one line: cross-validated AUC, and for a retrained
    probe the comparison with the probe in use on held-back confirmed cases."""
    parts = []
    cv = evaluation.get("cross_validation")
    if isinstance(cv, dict) and "auc" in cv:
        low, high = cv["auc_ci95"]
        parts.append(f"CV AUC {cv['auc']:.3f} [{low:.3f}, {high:.3f}] on {cv['n_ai']}+{cv['n_real']}")
    held = evaluation.get("held_back")
    if isinstance(held, dict):
        if "candidate" in held:
            parts.append(f"held-back AUC {held['candidate']['auc']:.3f}")
        if "in_use" in held:
            parts.append(f"vs {held['in_use']['version']} {held['in_use']['auc']:.3f}")
        if "note" in held:
            parts.append(str(held["note"]))
        parts.append(f"{held.get('held_back', 0)} held back")
    return "; ".join(parts) or "—"


@admin.register(DetectorVersion)
class DetectorVersionAdmin(admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("version", "kind", "status", "figures", "created_at", "promoted_at")
    list_filter = ("kind", "status")
    readonly_fields = ("version", "kind", "weights_path", "sha256", "status", "figures", "evaluation", "created_at",
                       "promoted_at")
    actions = ["promote"]

    @admin.display(description="Figures")
    def figures(self, row: DetectorVersion) -> str:
        return figures(row.evaluation or {})

    @admin.action(description="Promote the selected version to active (the current one of its kind is retired)")
    def promote(self, request: Any, queryset: Any) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return
        row = version_promote(version=queryset.get().version, actor=request.user.get_username())
        self.message_user(request, f"{row.version} is now active; new scores use it for priority.")
