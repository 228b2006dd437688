"""Console pages for queues and routing (admins), holds and escalation to a named senior, and muted reporters.

Views parse input and call one service; the services check the roles again and audit every change. The role
check comes before any lookup, so ids stay private to those who may act on them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from hashing.models import Bank
from moderation.models import Decision, Queue, Report, ReviewTask, RoutingRule
from moderation.roles import (
    PERM_DECIDE,
    PERM_ESCALATE,
    PERM_MANAGE_SETTINGS,
    PERM_SECOND_REVIEW,
    ROLE_LABELS,
    ROLE_ORDER,
    require,
)
from moderation.selectors import queues as queue_selectors
from moderation.services import claims, delayed_takedowns, holds, routing_admin
from moderation.services import mutes as mutes_service

_ANY = [("", "any")]
_TRI = [("", "either"), ("yes", "yes"), ("no", "no")]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    order = forms.IntegerField(min_value=0, initial=100, help_text="Rules are tried lowest first; the first "
                                                                    "that matches routes the case.")
    queue = forms.ModelChoiceField(queryset=Queue.objects.all(), label="Send to queue")
    enabled = forms.BooleanField(required=False, initial=True)
    kind = forms.ChoiceField(required=False, choices=_ANY + list(RoutingRule.Kind.choices), label="Case kind")
    source = forms.ChoiceField(required=False, choices=_ANY + list(Report.Source.choices))
    reason = forms.CharField(required=False, max_length=100, label="Reason code starts with",
                             help_text="A priority reason (trusted_flagger, match, partner_blocked...) or the "
                                       "reason type given in the platform's app (e.g. reasonChildSafety).")
    match_bank = forms.ModelChoiceField(queryset=Bank.objects.all(), required=False, label="Has a match in bank")
    match_bank_kind = forms.ChoiceField(required=False, choices=_ANY + list(Bank.Kind.choices),
                                        label="Has a match in a bank of kind")
    score_min = forms.FloatField(required=False, min_value=0, max_value=1, label="Score from")
    score_max = forms.FloatField(required=False, min_value=0, max_value=1, label="Score to")
    language = forms.CharField(required=False, max_length=20,
                               help_text="Matches only reports whose language is known (e.g. de).")
    muted_reporter = forms.ChoiceField(required=False, choices=_TRI, label="Reporter is muted")

    def fields_for_service(self) -> routing_admin.RuleFields:
        d = self.cleaned_data
        return routing_admin.RuleFields(
            name=d["name"], order=d["order"], queue_id=d["queue"].pk, enabled=d["enabled"], kind=d["kind"],
            source=d["source"], reason=d["reason"], match_bank_id=d["match_bank"].pk if d["match_bank"] else None,
            match_bank_kind=d["match_bank_kind"], score_min=d["score_min"], score_max=d["score_max"],
            language=d["language"], muted_reporter={"yes": True, "no": False}.get(d["muted_reporter"]))

    @staticmethod
    def initial_for(rule: RoutingRule) -> dict[str, Any]:
        return {"name": rule.name, "order": rule.order, "queue": rule.queue_id, "enabled": rule.enabled,
                "kind": rule.kind, "source": rule.source, "reason": rule.reason, "match_bank": rule.match_bank_id,
                "match_bank_kind": rule.match_bank_kind, "score_min": rule.score_min, "score_max": rule.score_max,
                "language": rule.language,
                "muted_reporter": {True: "yes", False: "no"}.get(rule.muted_reporter, "")}  # type: ignore[arg-type]


class QueueForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.SlugField(max_length=50, required=False, help_text="For links; set when the queue is made.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    roles = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                      choices=[(r, ROLE_LABELS[r]) for r in ROLE_ORDER],
                                      help_text="Who may work the queue. No role and no user: every console role.")
    users = forms.ModelMultipleChoiceField(queryset=get_user_model().objects.filter(is_active=True).order_by(
        "username"), required=False, help_text="People who may work it whatever their role.")
    position = forms.IntegerField(min_value=0, initial=100)


@login_required
@require_http_methods(["GET"])
def routing(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_SETTINGS, "edit queues and routing rules")
    return render(request, "console/admin/routing.html", {
        "queues": Queue.objects.prefetch_related("users"),
        "rules": RoutingRule.objects.select_related("queue", "match_bank").order_by("order", "id"),
    })


def _rule_page(request: HttpRequest, form: RuleForm, rule: RoutingRule | None, status: int = 200) -> HttpResponse:
    return render(request, "console/admin/routing_rule.html", {"form": form, "rule": rule}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    require(request.user, PERM_MANAGE_SETTINGS, "edit routing rules")
    rule = get_object_or_404(RoutingRule, pk=rule_id) if rule_id is not None else None
    if request.method == "GET":
        return _rule_page(request, RuleForm(initial=RuleForm.initial_for(rule) if rule else None), rule)
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            saved = routing_admin.rule_save(user=request.user, rule_id=rule_id, fields=form.fields_for_service())
        except routing_admin.RoutingEditError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Saved the rule \"{saved.name}\"; it routes cases from now on.")
            return redirect("console:routing")
    return _rule_page(request, form, rule, status=400)


@login_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_SETTINGS, "edit routing rules")
    rule = get_object_or_404(RoutingRule, pk=rule_id)
    routing_admin.rule_delete(user=request.user, rule_id=rule.pk)
    messages.success(request, f"Deleted the rule \"{rule.name}\".")
    return redirect("console:routing")


@login_required
@require_http_methods(["GET", "POST"])
def queue_edit(request: HttpRequest, queue_id: int | None = None) -> HttpResponse:
    require(request.user, PERM_MANAGE_SETTINGS, "edit queues")
    queue = get_object_or_404(Queue, pk=queue_id) if queue_id is not None else None
    if request.method == "GET":
        initial = {"name": queue.name, "slug": queue.slug, "description": queue.description, "roles": queue.roles,
                   "users": list(queue.users.all()), "position": queue.position} if queue else None
        return render(request, "console/admin/routing_queue.html", {"form": QueueForm(initial=initial),
                                                                     "queue": queue})
    form = QueueForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            saved = routing_admin.queue_save(user=request.user, queue_id=queue_id, name=d["name"], slug=d["slug"],
                                             description=d["description"], roles=d["roles"],
                                             user_ids=[u.pk for u in d["users"]], position=d["position"])
        except routing_admin.RoutingEditError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Saved the queue \"{saved.name}\".")
            return redirect("console:routing")
    return render(request, "console/admin/routing_queue.html", {"form": form, "queue": queue}, status=400)


class HoldForm(forms.Form):
    until = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
    reason = forms.CharField(max_length=claims.NOTE_MAX_CHARS)


@login_required
@require_POST
def hold(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_DECIDE, "put cases on hold")
    get_object_or_404(ReviewTask, pk=task_id)
    form = HoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the time the hold ends (UTC) and the reason for it.")
        return redirect("console:case", task_id=task_id)
    try:
        result = holds.task_hold(task_id=task_id, user=request.user, until=form.cleaned_data["until"],
                                 reason=form.cleaned_data["reason"])
    except (claims.ReviewError, claims.InvalidDecision) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"On hold until {result.task.held_until:%Y-%m-%d %H:%M} UTC; \"next\" skips it "
                                  "until then.")
        if result.past_deadline:
            messages.warning(request, "The hold ends after the case's legal deadline, which still runs: the case "
                                      "will be escalated as late if it is not decided in time.")
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def hold_lift(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_DECIDE, "lift holds")
    get_object_or_404(ReviewTask, pk=task_id)
    holds.task_unhold(task_id=task_id, user=request.user)
    messages.success(request, "The hold is lifted; the case can be drawn again.")
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def escalate_to(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_ESCALATE, "escalate cases")
    get_object_or_404(ReviewTask, pk=task_id)
    to = request.POST.get("to", "")
    try:
        task = claims.task_escalate(task_id=task_id, user=request.user, note=request.POST.get("note", ""),
                                    to_user_id=int(to) if to.isdigit() else 0)
    except (claims.ReviewError, claims.InvalidDecision) as exc:
        messages.error(request, str(exc))
    else:
        name = task.escalated_to.get_username() if task.escalated_to else "the senior moderators"
        messages.success(request, f"Escalated to {name}.")
    return redirect("console:case", task_id=task_id)


class MuteForm(forms.Form):
    email = forms.EmailField(label="Reporter's email address")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=mutes_service.REASON_MAX_CHARS,
                             help_text="Kept in the audit log.")


@login_required
@require_http_methods(["GET", "POST"])
def mutes(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_SECOND_REVIEW, "see and change muted reporters")
    form = MuteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                mutes_service.reporter_mute(user=request.user, email=form.cleaned_data["email"],
                                            reason=form.cleaned_data["reason"])
            except mutes_service.MuteError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Muted. New reports from this address are stored and acknowledged, and "
                                          "go to the low-priority queue.")
                return redirect("console:mutes")
        status = 400
    return render(request, "console/mutes.html", {"form": form, "mutes": queue_selectors.mutes()}, status=status)


@login_required
@require_POST
def unmute(request: HttpRequest, mute_id: int) -> HttpResponse:
    require(request.user, PERM_SECOND_REVIEW, "unmute reporters")
    # Idempotent: a second click (or a colleague's) finds the mute gone and says so.
    if mutes_service.reporter_unmute(user=request.user, mute_id=mute_id):
        messages.success(request, "Unmuted: new reports from the address are routed as anyone's.")
    else:
        messages.info(request, "That address is not muted (any more).")
    return redirect("console:mutes")


@login_required
@require_POST
def mute_reporter(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_SECOND_REVIEW, "mute reporters")
    get_object_or_404(ReviewTask, pk=task_id)
    try:
        mutes_service.reporter_mute_for_case(user=request.user, task_id=task_id,
                                             reason=request.POST.get("reason", ""))
    except mutes_service.MuteError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The reporter is muted: their new reports are stored and acknowledged, and go "
                                  "to the low-priority queue.")
    return redirect("console:case", task_id=task_id)


class TakedownLaterForm(forms.Form):
    reason = forms.ChoiceField(choices=Decision.Reason.choices)
    effective_at = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
    note = forms.CharField(required=False, max_length=claims.NOTE_MAX_CHARS)
    past_deadline_confirmed = forms.BooleanField(required=False)


@login_required
@require_POST
def takedown_later(request: HttpRequest, task_id: int) -> HttpResponse:
    require(request.user, PERM_DECIDE, "decide cases")
    get_object_or_404(ReviewTask, pk=task_id)
    form = TakedownLaterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason and the time the takedown takes effect (UTC).")
        return redirect("console:case", task_id=task_id)
    d = form.cleaned_data
    try:
        result = delayed_takedowns.takedown_schedule(
            task_id=task_id, user=request.user, reason=d["reason"], effective_at=d["effective_at"], note=d["note"],
            past_deadline_confirmed=d["past_deadline_confirmed"])
    except (claims.ReviewError, claims.InvalidDecision) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Decided: take down, effective {result.decision.effective_at:%Y-%m-%d %H:%M} "
                                  "UTC. Re-uploads are blocked now; the removal and the notices wait until then.")
    return redirect("console:case", task_id=task_id)


@login_required
@require_POST
def takedown_now(request: HttpRequest, decision_id: int) -> HttpResponse:
    require(request.user, PERM_DECIDE, "carry out delayed takedowns")
    decision = get_object_or_404(Decision, pk=decision_id)
    delayed_takedowns.delayed_takedown_effective_now(decision_id=decision.pk, user=request.user)
    messages.success(request, "The takedown is being carried out now.")
    return redirect("console:case", task_id=decision.task_id)
