"""The moderator console: queue, case page, claim, decide, private media."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from moderation import selectors
from moderation.forms import DecideForm
from moderation.models import Decision, Media, ReviewTask
from moderation.services import review
from moderation.services.roles import PERM_DECIDE, PERM_VIEW_MEDIA, PERM_VIEW_QUEUE

QUEUE_PAGE_SIZE = 50


@login_required
@permission_required(PERM_VIEW_QUEUE, raise_exception=True)
def queue(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state") or None
    if state not in (None, *ReviewTask.State.values):
        state = None
    page = Paginator(selectors.queue_tasks(state=state), QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    counts = selectors.queue_counts()
    return render(request, "console/queue.html", {
        "page": page, "state": state or "", "now": timezone.now(),
        "state_counts": [(value, label, counts[value]) for value, label in ReviewTask.State.choices],
    })


@login_required
@permission_required(PERM_VIEW_QUEUE, raise_exception=True)
def case(request: HttpRequest, task_id: int) -> HttpResponse:
    detail = selectors.case_detail(task_id)
    return render(request, "console/case.html", {
        "case": detail, "now": timezone.now(), "form": DecideForm(),
        "can_decide": request.user.has_perm(PERM_DECIDE),
        "holds_claim": detail.task.state == ReviewTask.State.CLAIMED and detail.task.assignee_id == request.user.pk,
        "takedown_reasons": [(v, label) for v, label in Decision.Reason.choices if v in review.TAKEDOWN_REASONS],
        "keep_reasons": [(v, label) for v, label in Decision.Reason.choices if v in review.NO_VIOLATION_REASONS],
    })


@login_required
@require_POST
def claim(request: HttpRequest, task_id: int) -> HttpResponse:
    get_object_or_404(ReviewTask, pk=task_id)
    try:
        review.task_claim(task_id=task_id, user=request.user)
    except review.ReviewError as exc:
        messages.error(request, str(exc))
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def next_case(request: HttpRequest) -> HttpResponse:
    task = review.task_next(user=request.user)
    if task is None:
        messages.info(request, "There is no unclaimed case in the queue.")
        return redirect("console:queue")
    return redirect("console:case", task_id=task.pk)


@login_required
@require_POST
def decide(request: HttpRequest, task_id: int) -> HttpResponse:
    get_object_or_404(ReviewTask, pk=task_id)
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a decision and a reason.")
        return redirect("console:case", task_id=task_id)
    try:
        result = review.decision_make(task_id=task_id, user=request.user, outcome=form.cleaned_data["decision"],
                                      reason=form.cleaned_data["reason"], note=form.cleaned_data["note"])
    except (review.ReviewError, review.InvalidDecision) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Decided: {result.decision.get_outcome_display()}.")
    return redirect("console:case", task_id=task_id)


@login_required
def media_file(request: HttpRequest, media_id: int) -> FileResponse:
    """Stream reported media to a moderator allowed to see it. Never cached, never public."""
    if not request.user.has_perm(PERM_VIEW_MEDIA):
        raise PermissionDenied("Your role does not allow you to see reported media.")
    media = get_object_or_404(Media, pk=media_id)
    response = FileResponse(media.file.open("rb"), content_type=media.mime)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response
