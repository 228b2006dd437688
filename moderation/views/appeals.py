"""Console pages for appeals (DSA Art. 20): the open appeals, and a senior reviewer's decision on one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from moderation.models import Appeal, Decision
from moderation.roles import PERM_VIEW_QUEUE
from moderation.services.appeals import AppealError, appeal_decide, open_appeals
from moderation.services.decisions import TAKEDOWN_REASONS


@login_required
def appeal_list(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERM_VIEW_QUEUE):
        raise PermissionDenied("Your role does not allow you to see appeals.")
    return render(request, "appeals/list.html", {"appeals": open_appeals()})


@login_required
@require_http_methods(["GET", "POST"])
def appeal_detail(request: HttpRequest, appeal_id: int) -> HttpResponse:
    if not request.user.has_perm(PERM_VIEW_QUEUE):
        raise PermissionDenied("Your role does not allow you to see appeals.")
    appeal = get_object_or_404(Appeal.objects.select_related("decision__report", "decision__decided_by",
                                                             "statement_of_reasons__item"), pk=appeal_id)
    error = ""
    if request.method == "POST":
        outcome = request.POST.get("outcome", "")
        if outcome not in ("uphold", "reverse"):
            error = "Choose whether to uphold or reverse the decision."
        else:
            try:
                appeal_decide(appeal_id=appeal.pk, user=request.user, reverse_decision=outcome == "reverse",
                              note=request.POST.get("note", ""),
                              takedown_reason=request.POST.get("takedown_reason", Decision.Reason.NCII))
            except (AppealError, PermissionDenied) as exc:
                error = str(exc)
            else:
                messages.success(request, f"Appeal {appeal.pk} decided.")
                return redirect("appeal-list")
    status = 400 if error else 200
    reasons = [(value, label) for value, label in Decision.Reason.choices if value in TAKEDOWN_REASONS]
    return render(request, "appeals/detail.html", {"appeal": appeal, "error": error, "takedown_reasons": reasons},
                  status=status)
