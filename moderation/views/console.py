"""The moderator console: queue, case page, claims, decisions, four-eyes review, wellness, dashboard.

Views parse input and call one service or selector; the services check roles.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from moderation import jobs
from moderation.console_forms import (
    BULK_DECIDE_MAX,
    BulkDecideForm,
    ConsoleDecideForm,
    MessageTemplateForm,
    NoteForm,
    PreferenceForm,
    QueueFilterForm,
)
from moderation.models import Decision, Media, ProposedDecision, ReportedItem, ReviewTask
from moderation.roles import (
    PERM_COMMENT,
    PERM_DECIDE,
    PERM_ESCALATE,
    PERM_MANAGE_SETTINGS,
    PERM_SECOND_REVIEW,
    PERM_VIEW_AUDIT,
    PERM_VIEW_DASHBOARD,
    PERM_VIEW_MEDIA,
    PERM_VIEW_QUEUE,
    PERM_VIEW_TEAM_EXPOSURE,
    require,
)
from moderation.selectors import case as case_selectors
from moderation.selectors import embedding as embedding_selectors
from moderation.selectors import queue as queue_selectors
from moderation.services import claims, decisions, exposure, pipeline
from moderation.services import dashboard as dash
from moderation.services.media import MediaLinkInvalid, media_link_check, media_read
from moderation.services.message_templates import message_choice, message_choices, message_template_save

# A page a moderator can scan at a glance; also what the query-count and timing benchmarks use.
QUEUE_PAGE_SIZE = 50
# Keyboard shortcuts on the case page (console.js binds them; the page lists them).
# "t" and "k" only move the focus (Enter then decides): one key alone never decides a case.
SHORTCUTS = [("n", "next case (without deciding)"), ("c", "claim"), ("r", "reveal / hide media"),
             ("d", "choose the decision reason"), ("t", "take down"), ("k", "no violation"),
             ("Shift+T", "take down, then claim the next case"), ("Shift+K", "no violation, then claim the next case"),
             ("m", "open or close “More”"), ("i", "ask for information"), ("e", "escalate"),
             ("?", "show the shortcuts")]
# The query parameter of "decide and next" (the decision buttons' formaction).
THEN_NEXT = "next"


def _reasons(outcome: str) -> list[tuple[str, str]]:
    allowed = decisions.REASONS_BY_OUTCOME[outcome]
    return [(value, label) for value, label in Decision.Reason.choices if value in allowed]


def _reason_groups() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The one reason select's groups: (label, outcome, reasons); a reason that fits both main decisions
    ("other") has its own group with no outcome."""
    takedown = _reasons(Decision.Outcome.TAKEDOWN)
    keep = _reasons(Decision.Outcome.NO_VIOLATION)
    both = [choice for choice in takedown if choice in keep]
    return [("Take down", Decision.Outcome.TAKEDOWN, [c for c in takedown if c not in both]),
            ("No violation", Decision.Outcome.NO_VIOLATION, [c for c in keep if c not in both]),
            ("Either decision", "", both)]


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_VIEW_QUEUE, "see the review queue")
    queues = queue_selectors.queue_choices()
    form = QueueFilterForm(request.GET or None, queues=queues)
    filters = form.filters() if form.is_bound else queue_selectors.QueueFilters()
    counts = queue_selectors.queue_counts()
    number = request.GET.get("page", "1")
    page = queue_selectors.queue_page(filters=filters, user=request.user, size=QUEUE_PAGE_SIZE, counts=counts,
                                      number=int(number) if number.isdigit() else 1)
    kept = {k: v for k, v in request.GET.items() if k != "page" and v}
    user: Any = request.user
    selectable = _bulk_selectable(page.rows, user)
    by_reports = filters.sort == queue_selectors.SORT_REPORTS
    return render(request, "console/queue.html", {
        "page": page, "form": form, "now": timezone.now(), "query": urlencode(kept),
        "state_counts": [(value, label, counts.get(value)) for value, label in ReviewTask.State.choices],
        "exposure_today": exposure.exposure_today(user=user), "queues": queues,
        # The "Reports" header orders by the number of reports, or back to queue order when it already does.
        "by_reports": by_reports,
        "reports_sort_query": urlencode({**{k: v for k, v in kept.items() if k != "sort"},
                                         **({} if by_reports else {"sort": queue_selectors.SORT_REPORTS})}),
        "selectable": selectable, "back": request.GET.urlencode(),
        # The bulk decision panel: only for those who decide, only when the page has a case they may tick. It
        # offers no message templates: reading them would cost the queue, a hot page, two more queries.
        **({"reason_groups": _reason_groups(), "bulk_max": BULK_DECIDE_MAX} if selectable else {}),
    })


def _bulk_selectable(rows: list[ReviewTask], user: Any) -> set[int]:
    """The rows whose box the queue shows for a bulk decision: undecided cases this user could decide now (no
    one else holds them; escalated ones only for seniors, and only those escalated to them or to no one named).
    The service checks it all again when deciding."""
    if not user.has_perm(PERM_DECIDE):
        return set()
    seniors = user.has_perm(PERM_SECOND_REVIEW)
    states = {ReviewTask.State.OPEN, ReviewTask.State.CLAIMED, *([ReviewTask.State.ESCALATED] if seniors else [])}
    # Queues the user's role may not work are not checked here (it would cost a query per queue): deciding
    # such a case is refused with a message naming it.
    return {t.pk for t in rows if t.state in states and t.assignee_id in (None, user.pk)
            and t.escalated_to_id in (None, user.pk)}


def _queue_url(query: str) -> str:
    """The queue with the filters of ``query`` (a query string as the queue page sent it). Only the filter form's
    fields and the page number are kept, and the path is always the queue's: never a redirect elsewhere."""
    known = {*QueueFilterForm.base_fields, "page"}
    kept = [(k, v) for k, v in parse_qsl(query.lstrip("?"))[:50] if k in known and v]
    return reverse("console:queue") + (f"?{urlencode(kept)}" if kept else "")


@login_required
@require_POST
def bulk_decide(request: HttpRequest) -> HttpResponse:
    """Decide the cases ticked in the queue the same way, all or none (``decisions.decision_submit_group``),
    then back to the queue with its filters and a message naming what was decided or what stopped it."""
    require(request.user, PERM_DECIDE, "decide cases")
    back = _queue_url(request.POST.get("back", ""))
    form = BulkDecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing was decided. {form.error_text()}")
        return redirect(back)
    d = form.cleaned_data
    numbers = {pk: number for pk, (number, _state) in form.case_numbers.items()}
    task_ids: list[int] = d["tasks"]
    try:
        results = decisions.decision_submit_group(
            task_ids=task_ids, user=request.user, outcome=d["decision"], reason=d["reason"], note=d["note"],
            reporter_template=d["reporter_template"], uploader_template=d["uploader_template"])
    except decisions.GroupDecisionError as exc:
        messages.error(request, f"Nothing was decided: case {numbers.get(exc.task_id, exc.task_id)} cannot be "
                                f"decided ({exc.__cause__ or exc}). Untick it and decide the others again.")
    except claims.InvalidDecision as exc:  # the input, the same for every case
        label = form.fields[exc.field].label if exc.field in form.fields else exc.field
        messages.error(request, f"Nothing was decided. {label}: {exc}")
    except (claims.ReviewError, ReviewTask.DoesNotExist) as exc:  # the first ticked case's own error
        why = exc if isinstance(exc, claims.ReviewError) else "it no longer exists"
        messages.error(request, f"Nothing was decided: case {numbers[task_ids[0]]} cannot be decided ({why}). "
                                "Untick it and decide the others again.")
    except PermissionDenied as exc:
        escalated = [number for number, state in form.case_numbers.values() if state == ReviewTask.State.ESCALATED]
        messages.error(request, f"Nothing was decided: {exc}" + (
            f" Untick the escalated cases ({', '.join(escalated)}): a senior moderator decides them."
            if escalated else ""))
    else:
        decided = [numbers[pk] for pk, r in results.items() if r.decision is not None]
        proposed = [numbers[pk] for pk, r in results.items() if r.proposal is not None]
        text = f"Decided {len(decided)} case{'s' if len(decided) != 1 else ''}"
        text += f": {', '.join(decided)}" if decided else ""
        if proposed:
            text += f"; proposed {len(proposed)} for a second reviewer: {', '.join(proposed)}"
        messages.success(request, f"{text}.")
    return redirect(back)


@login_required
@require_GET
def case(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_VIEW_QUEUE, "see cases")
    detail = case_selectors.case_detail(task_id)
    user: Any = request.user
    group_ids = [d.task.pk for d in detail.near_duplicates if d.actionable]
    media_ids = [entry.evidence.media.pk for entry in detail.items if entry.evidence is not None]
    neighbours = embedding_selectors.nearest_confirmed_for_case(media_ids=media_ids, user=user)
    for entry in detail.items:
        if entry.evidence is not None:
            entry.evidence.neighbours = neighbours.get(entry.evidence.media.pk, [])
    return render(request, "console/case.html", {
        "case": detail, "now": timezone.now(), "form": ConsoleDecideForm(group_task_ids=group_ids),
        "pref": case_selectors.console_preference(user),
        "can_decide": user.has_perm(PERM_DECIDE),
        "can_second_review": user.has_perm(PERM_SECOND_REVIEW),
        "can_escalate": user.has_perm(PERM_ESCALATE),
        "can_comment": user.has_perm(PERM_COMMENT),
        "can_view_media": user.has_perm(PERM_VIEW_MEDIA),
        "holds_claim": detail.task.state in (ReviewTask.State.CLAIMED, ReviewTask.State.ESCALATED)
        and detail.task.assignee_id == user.pk,
        "reason_groups": _reason_groups(), "then_next": THEN_NEXT,
        "templates": message_choices(),
        "shortcuts": SHORTCUTS,
        "exposure_today": exposure.exposure_today(user=user),
        "exposure_cap": settings.TAKEDOWN_EXPOSURE_DAILY_CAP,
    })


@login_required
@require_POST
def claim(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_VIEW_QUEUE, "claim cases")  # before the lookup: ids stay private
    get_object_or_404(ReviewTask, pk=task_id)
    try:
        claims.task_claim(task_id=task_id, user=request.user)
    except claims.ReviewError as exc:
        messages.error(request, str(exc))
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def release(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_VIEW_QUEUE, "release cases")
    get_object_or_404(ReviewTask, pk=task_id)
    claims.task_release(task_id=task_id, user=request.user)
    messages.info(request, "You let go of the case; it is back in the queue.")
    return redirect("console:queue")


@login_required
@require_POST
def next_case(request: HttpRequest) -> HttpResponse:
    return _claim_next(request)


def _claim_next(request: HttpRequest) -> HttpResponse:
    """Claim the next case the user may work and show it; back to the queue when there is none."""
    task = claims.task_next(user=request.user)
    if task is None:
        messages.info(request, "There is no unclaimed case in the queue.")
        return redirect("console:queue")
    return redirect("console:case", task_id=task.pk)


@login_required
@require_POST
def decide(request: HttpRequest, task_id: int) -> HttpResponse:
    """Decide the case (and the near-duplicates ticked with it); with ``?then=next``, "decide and next",
    then claim the next case in the same request."""
    require(request.user, PERM_DECIDE, "decide cases")
    get_object_or_404(ReviewTask, pk=task_id)
    form = ConsoleDecideForm(request.POST, group_task_ids=[int(v) for v in request.POST.getlist("also")
                                                           if v.isdigit()])
    if not form.is_valid():
        fields = ", ".join(sorted(form.errors))
        messages.error(request, f"Choose a decision and a reason (check: {fields}).")
        return redirect("console:case", task_id=task_id)
    d = form.cleaned_data
    try:
        results = decisions.decision_submit_group(
            task_ids=[task_id, *d["also"]], user=request.user, outcome=d["decision"], reason=d["reason"],
            note=d["note"], reporter_template=d["reporter_template"], uploader_template=d["uploader_template"])
    except (claims.ReviewError, claims.InvalidDecision) as exc:
        messages.error(request, str(exc))
        return redirect("console:case", task_id=task_id)
    result = results[task_id]
    if result.proposal is not None:
        messages.success(request, f"Proposed: {result.proposal.get_state_display()} "
                                  f"({result.proposal.why_four_eyes}).")
    elif result.decision is not None:
        messages.success(request, f"Decided: {result.decision.get_outcome_display()}.")
    for other in results:
        if other != task_id:
            messages.success(request, f"Case #{other} of the group decided the same way.")
    if request.GET.get("then") == THEN_NEXT:
        return _claim_next(request)
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def escalate(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_ESCALATE, "escalate cases")
    get_object_or_404(ReviewTask, pk=task_id)
    form = NoteForm(request.POST)
    try:
        claims.task_escalate(task_id=task_id, user=request.user,
                             note=form.data.get("note", "") if form.is_bound else "")
    except (claims.ReviewError, claims.InvalidDecision) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Escalated to the senior moderators.")
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def comment(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_COMMENT, "comment on cases")
    get_object_or_404(ReviewTask, pk=task_id)
    try:
        claims.case_comment(task_id=task_id, user=request.user, text=request.POST.get("note", ""))
    except claims.InvalidDecision as exc:
        messages.error(request, str(exc))
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def item_refetch(request: HttpRequest, item_id: int) -> HttpResponse:
    """A moderator asks for an unprocessable or unavailable item to be fetched from the platform again."""
    require(request.user, PERM_DECIDE, "fetch items again")  # before the lookup: ids stay private
    get_object_or_404(ReportedItem, pk=item_id)
    task_id = request.POST.get("task", "")
    try:
        report_id = pipeline.item_refetch(item_id=item_id, actor=request.user.get_username())
    except pipeline.RefetchRefused as exc:
        messages.error(request, str(exc))
    else:
        transaction.on_commit(lambda: jobs.report_process(report_id))
        messages.success(request, "Fetching the item again; reload the page in a moment.")
    if task_id.isdigit():
        return redirect("console:case", task_id=int(task_id))
    return redirect("console:queue")


@login_required
@require_POST
def proposal_confirm(request: HttpRequest, proposal_id: int) -> HttpResponse:
    require(request.user, PERM_SECOND_REVIEW, "confirm proposed decisions")
    proposal = get_object_or_404(ProposedDecision, pk=proposal_id)
    try:
        decisions.proposal_confirm(proposal_id=proposal_id, user=request.user)
    except claims.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Confirmed: the decision has taken effect.")
    return redirect("console:case", task_id=proposal.task_id)


@login_required
@require_POST
def proposal_reject(request: HttpRequest, proposal_id: int) -> HttpResponse:
    require(request.user, PERM_SECOND_REVIEW, "reject proposed decisions")
    proposal = get_object_or_404(ProposedDecision, pk=proposal_id)
    try:
        decisions.proposal_reject(proposal_id=proposal_id, user=request.user, note=request.POST.get("note", ""))
    except (claims.ReviewError, claims.InvalidDecision) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Not confirmed: the case is escalated for a senior moderator to decide.")
    return redirect("console:case", task_id=proposal.task_id)


@login_required
@require_GET
def media_file(request: HttpRequest, media_id: int) -> HttpResponse:
    """Stream reported media to a moderator allowed to see it. Never cached, never public."""
    require(request.user, PERM_VIEW_MEDIA, "see reported media")
    try:  # the link must be this user's, for this media, and fresh (the case page signs it)
        media_link_check(media_id=media_id, user_id=request.user.pk or 0, token=request.GET.get("sig", ""))
    except MediaLinkInvalid as exc:
        raise PermissionDenied(str(exc)) from exc
    media = get_object_or_404(Media, pk=media_id)
    if media.pk in case_selectors.withheld_media_ids([media.pk]):
        raise PermissionDenied("This media is withheld: its case was handed to the child-safety procedure.")
    response = HttpResponse(media_read(media), content_type=media.mime)
    response["Cache-Control"] = "private, no-store, max-age=0"
    response["Content-Disposition"] = "inline"
    return response


@login_required
@require_POST
def media_reveal(request: HttpRequest, media_id: int) -> JsonResponse:
    """Record a reveal before the page unblurs the media; refuses past the daily cap."""
    require(request.user, PERM_VIEW_MEDIA, "see reported media")
    get_object_or_404(Media, pk=media_id)
    task_id = request.POST.get("task")
    try:
        count = exposure.exposure_record(user=request.user, media_id=media_id,
                                         task_id=int(task_id) if task_id and task_id.isdigit() else None)
    except exposure.ExposureCapReached as exc:
        return JsonResponse({"detail": str(exc)}, status=429)
    except exposure.MediaWithheld as exc:
        return JsonResponse({"detail": str(exc)}, status=403)
    return JsonResponse({"revealed_today": count, "cap": settings.TAKEDOWN_EXPOSURE_DAILY_CAP or None})


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_VIEW_QUEUE, "use the console")
    current = case_selectors.console_preference(request.user)
    form = PreferenceForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        exposure.preference_save(user=request.user, blur_px=d["blur_px"], greyscale=d["greyscale"],
                                 video_autoplay=d["video_autoplay"], reveal_mode=d["reveal_mode"])
        messages.success(request, "Saved your display preferences.")
        return redirect("console:preferences")
    return render(request, "console/preferences.html", {"form": form})


@login_required
@require_GET
def exposure_page(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_VIEW_QUEUE, "use the console")
    user: Any = request.user
    team = exposure.exposure_team(user=user) if user.has_perm(PERM_VIEW_TEAM_EXPOSURE) else None
    return render(request, "console/exposure.html", {
        "mine": exposure.exposure_today(user=user), "cap": settings.TAKEDOWN_EXPOSURE_DAILY_CAP, "team": team})


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_VIEW_DASHBOARD, "see the dashboard")
    figures = dash.dashboard_figures()
    return render(request, "console/dashboard.html", {
        "d": figures,
        "state_chart": dash.bar_chart_svg(title="Open cases by state", rows=figures.by_state),
        "band_chart": dash.bar_chart_svg(title="Open cases by deadline", rows=figures.by_band, colour="#146c2e"),
        "day_chart": dash.day_chart_svg(title="Decisions per day (late in red)", rows=figures.per_day),
        "sla_charts": dash.sla_charts(figures.sla) if figures.sla else [],
        "can_audit": request.user.has_perm(PERM_VIEW_AUDIT),
    })


@login_required
@require_http_methods(["GET", "POST"])
def message_templates(request: HttpRequest) -> HttpResponse:
    """Admins add or override the message templates moderators pick when deciding."""
    require(request.user, PERM_MANAGE_SETTINGS, "edit message templates")
    if request.method == "POST":
        form = MessageTemplateForm(request.POST)
        if form.is_valid():
            try:
                message_template_save(user=request.user, **form.cleaned_data)
            except ValueError as exc:
                field, _sep, text = str(exc).partition(": ")
                form.add_error(field if field in form.fields else None, text or str(exc))
            else:
                messages.success(request, f"Saved the template {form.cleaned_data['key']}.")
                return redirect("console:templates")
    else:
        chosen = message_choice(request.GET.get("key", ""))
        form = MessageTemplateForm(initial=asdict(chosen) if chosen else None)
    return render(request, "console/message_templates.html", {"form": form, "choices": message_choices()})
