"""Pages for people depicted and their representatives: report, confirmation, status, completing a notice,
withdrawal, asking for a review of a "no violation" decision, and the uploader's appeal form. No account:
a case is opened with its case number and PIN, which puts the case (only its id) in the session for an hour."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from hashing.errors import MediaError
from moderation.forms import ReportForm, StatusLookupForm
from moderation.models import Report
from moderation.security.client import client_address
from moderation.security.ratelimit import rate_limited
from moderation.selectors.reporter import report_public_status
from moderation.services.appeals import (
    MAX_STATEMENT_CHARS,
    AppealError,
    appeal_deadline,
    appeal_submit,
    reporter_appeal_submit,
    reporter_review,
)
from moderation.services.dsa import statement_from_token
from moderation.services.intake import (
    TAKE_IT_DOWN_URL,
    IntakeError,
    Notice,
    Upload,
    report_complete,
    report_submit,
    report_withdraw,
)
from moderation.services.lockout import LookupLocked, report_lookup_limited
from moderation.services.notices import redress_options

SESSION_CASE = "victim_case_id"
SESSION_SECONDS = 60 * 60  # an opened case stays open in this browser for an hour


class VictimReportForm(ReportForm):
    """The report form plus optional context and the hashes computed in the browser."""

    optional_fields = frozenset({"locations", "image", "ai_made", "first_seen", "other_places"})

    ai_made = forms.ChoiceField(
        label=gettext_lazy("Was it made or changed with AI?"), required=False, widget=forms.RadioSelect,
        choices=[("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No")), ("unsure", gettext_lazy("I am not sure"))])
    first_seen = forms.CharField(label=gettext_lazy("When did you first see it?"), required=False, max_length=100,
                                 help_text=gettext_lazy("A rough date is fine."))
    other_places = forms.CharField(label=gettext_lazy("Anything else that helps us"), required=False,
                                   max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
                                   help_text=gettext_lazy("For example, other sites where it appears."))
    client_hashes = forms.CharField(required=False, widget=forms.HiddenInput)

    field_order = ["reporter_name", "reporter_email", "relationship", "locations", "image", "statement",
                   "ai_made", "first_seen", "other_places", "client_hashes", "good_faith", "adult_confirmed",
                   "signature"]

    def hash_list(self) -> list[str]:
        raw = self.cleaned_data.get("client_hashes") or ""
        if not raw.strip():
            return []
        try:
            values = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python can parse
            values = None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            self.add_error(None, _("The image fingerprints could not be read. Please pick the images again."))
            return []
        return [v.lower() for v in values]

    def context_fields(self) -> dict[str, str]:
        return {name: str(self.cleaned_data[name]).strip() for name in ("ai_made", "first_seen", "other_places")
                if self.cleaned_data.get(name)}


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "victim/home.html", {"take_it_down_url": TAKE_IT_DOWN_URL})


@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("report")
def report_new(request: HttpRequest) -> HttpResponse:
    form = VictimReportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = request.FILES.get("image")
        uploads = [Upload(name=upload.name or "", data=upload.read())] if upload else []
        hashes = form.hash_list()
        notice = Notice(
            reporter_name=form.cleaned_data["reporter_name"], reporter_email=form.cleaned_data["reporter_email"],
            relationship=form.cleaned_data["relationship"], statement=form.cleaned_data["statement"],
            good_faith=form.cleaned_data["good_faith"], signature=form.cleaned_data["signature"],
            adult_confirmed=form.cleaned_data["adult_confirmed"], locations=form.location_list(),
            source=Report.Source.WEB, context=form.context_fields(), client_hashes=hashes)
        if not form.errors:
            try:
                submitted = report_submit(notice=notice, uploads=uploads)
            except IntakeError as exc:
                for name, messages in exc.errors.items():
                    field = "image" if name == "files" else name
                    for message in messages:
                        form.add_error(field if field in form.fields and field != "client_hashes" else None, message)
            except MediaError as exc:
                form.add_error("image", str(exc))
            else:
                # Shown once, on this response only: the PIN is not stored in a readable form.
                return render(request, "victim/submitted.html", {
                    "case_number": submitted.report.case_number, "pin": submitted.pin,
                    "deadline_hours": _hours(submitted.report), "hashes": len(hashes)})
    status = 400 if request.method == "POST" else 200
    return render(request, "victim/report.html", {"form": form, "take_it_down_url": TAKE_IT_DOWN_URL},
                  status=status)


def _hours(report: Report) -> int | None:
    if report.deadline_at and report.notice_complete_at:
        return round((report.deadline_at - report.notice_complete_at).total_seconds() / 3600)
    return None


def _open_case(request: HttpRequest) -> Report | None:
    case_id = request.session.get(SESSION_CASE)
    return Report.objects.filter(pk=case_id).first() if case_id else None


def _status_page(request: HttpRequest, report: Report, *, status: int = 200, **extra: Any) -> HttpResponse:
    review = reporter_review(report)
    return render(request, "victim/status.html", {
        "status": report_public_status(report), "report": report,
        "complete_form": CompleteForm() if report.status == Report.Status.NEEDS_INFORMATION else None,
        "review": review, "review_form": ReviewForm() if review.can_ask else None, **redress_options(),
        **extra}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("lookup")
def status_lookup(request: HttpRequest) -> HttpResponse:
    form = StatusLookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            report = report_lookup_limited(case_number=form.cleaned_data["case_number"],
                                           pin=form.cleaned_data["pin"], client=client_address(request.META))
        except LookupLocked as exc:
            form.add_error(None, str(exc))
            return render(request, "victim/status_lookup.html", {"form": form}, status=429)
        if report is not None:
            request.session.cycle_key()
            request.session[SESSION_CASE] = report.pk
            request.session.set_expiry(SESSION_SECONDS)
            return _status_page(request, report)
        form.add_error(None, _("We could not find a case with this case number and PIN. Check both and try again."))
        return render(request, "victim/status_lookup.html", {"form": form}, status=404)
    if request.method == "GET" and (report := _open_case(request)) is not None:
        return _status_page(request, report)
    return render(request, "victim/status_lookup.html", {"form": form})


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(label=gettext_lazy("Yes, withdraw this case and its fingerprints"), required=True)


class CompleteForm(forms.Form):
    reporter_name = forms.CharField(label=gettext_lazy("Your name"), max_length=200, required=False)
    relationship = forms.ChoiceField(label=gettext_lazy("Who are you?"), required=False, widget=forms.RadioSelect,
                                     choices=Report.Relationship.choices)
    statement = forms.CharField(label=gettext_lazy("Why should it be removed?"), required=False,
                                widget=forms.Textarea(attrs={"rows": 3}))
    good_faith = forms.BooleanField(label=gettext_lazy(
        "I believe in good faith that this content is shared without the consent of the person shown, "
        "and what I have said is true to the best of my knowledge."), required=False)
    signature = forms.CharField(label=gettext_lazy("Signature: type your full name"), max_length=200,
                                required=False)


@never_cache
@require_POST
def status_withdraw(request: HttpRequest) -> HttpResponse:
    report = _open_case(request)
    if report is None:
        return redirect("status-lookup")
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return _status_page(request, report, status=400, withdraw_error=_("Tick the box to confirm the withdrawal."))
    try:
        withdrawn = report_withdraw(report=report)
    except IntakeError as exc:
        return _status_page(request, report, status=409, withdraw_error=" ".join(exc.errors.get("status", [])))
    report.refresh_from_db()
    return _status_page(request, report, withdrawn_hashes=withdrawn, just_withdrawn=True)


@never_cache
@require_POST
def status_complete(request: HttpRequest) -> HttpResponse:
    report = _open_case(request)
    if report is None:
        return redirect("status-lookup")
    form = CompleteForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    try:
        report = report_complete(report=report, reporter_name=data.get("reporter_name") or "",
                                 relationship=data.get("relationship") or "", statement=data.get("statement") or "",
                                 good_faith=bool(data.get("good_faith")), signature=data.get("signature") or "")
    except IntakeError as exc:
        for name, messages in exc.errors.items():
            for message in messages:
                form.add_error(name if name in form.fields else None, message)
        return render(request, "victim/status.html", {
            "status": report_public_status(report), "report": report, "complete_form": form}, status=400)
    return _status_page(request, report)


class ReviewForm(forms.Form):
    statement = forms.CharField(label=gettext_lazy("Why should we look again?"),
                                widget=forms.Textarea(attrs={"rows": 4}), max_length=MAX_STATEMENT_CHARS,
                                help_text=gettext_lazy("For example, what the decision missed. It is free."))


@never_cache
@require_POST
def status_review(request: HttpRequest) -> HttpResponse:
    """The reporter asks for a review of a "no violation" decision (DSA Art. 20), from the open case."""
    report = _open_case(request)
    if report is None:
        return redirect("status-lookup")
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            reporter_appeal_submit(report=report, text=form.cleaned_data["statement"])
        except AppealError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            return _status_page(request, report, just_asked_review=True)
    return _status_page(request, report, status=400, review_form=form)


class AppealForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Your email address"),
                             help_text=gettext_lazy("We send the answer here."))
    statement = forms.CharField(label=gettext_lazy("Why is the decision wrong?"),
                                widget=forms.Textarea(attrs={"rows": 5}), max_length=5000)


@never_cache
@require_http_methods(["GET", "POST"])
def appeal_new(request: HttpRequest, token: str) -> HttpResponse:
    statement = statement_from_token(token)
    if statement is None:
        return render(request, "victim/appeal.html", {"invalid": True}, status=404)
    form = AppealForm(request.POST or None)
    context = {"form": form, "statement": statement, "deadline": appeal_deadline(statement.decision),
               "facts": statement.payload.get("decision_facts", "")}
    if request.method == "POST" and form.is_valid():
        try:
            appeal_submit(statement=statement, email=form.cleaned_data["email"],
                          text=form.cleaned_data["statement"])
        except AppealError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            return render(request, "victim/appeal.html", {**context, "received": True})
    return render(request, "victim/appeal.html", context, status=400 if request.method == "POST" else 200)
