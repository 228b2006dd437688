"""Pages for people depicted and their representatives: report, confirmation, status. No account."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from hashing.errors import MediaError
from moderation import selectors
from moderation.forms import ReportForm, StatusLookupForm
from moderation.models import Report
from moderation.services.intake import TAKE_IT_DOWN_URL, IntakeError, Notice, Upload, report_submit


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "victim/home.html", {"take_it_down_url": TAKE_IT_DOWN_URL})


@never_cache
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = request.FILES.get("image")
        uploads = [Upload(name=upload.name or "", data=upload.read())] if upload else []
        notice = Notice(
            reporter_name=form.cleaned_data["reporter_name"], reporter_email=form.cleaned_data["reporter_email"],
            relationship=form.cleaned_data["relationship"], statement=form.cleaned_data["statement"],
            good_faith=form.cleaned_data["good_faith"], signature=form.cleaned_data["signature"],
            adult_confirmed=form.cleaned_data["adult_confirmed"], locations=form.location_list(),
            source=Report.Source.WEB)
        try:
            submitted = report_submit(notice=notice, uploads=uploads)
        except IntakeError as exc:
            for name, messages in exc.errors.items():
                for message in messages:
                    field = "image" if name == "files" else name
                    form.add_error(field if field in form.fields else None, message)
        except MediaError as exc:
            form.add_error("image", str(exc))
        else:
            # Shown once, on this response only: the PIN is not stored in a readable form.
            return render(request, "victim/submitted.html",
                          {"case_number": submitted.report.case_number, "pin": submitted.pin})
    status = 400 if request.method == "POST" else 200
    return render(request, "victim/report.html", {"form": form, "take_it_down_url": TAKE_IT_DOWN_URL},
                  status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def status_lookup(request: HttpRequest) -> HttpResponse:
    form = StatusLookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        report = selectors.report_lookup(form.cleaned_data["case_number"], form.cleaned_data["pin"])
        if report is not None:
            return render(request, "victim/status.html", {"status": selectors.report_public_status(report)})
        form.add_error(None, "We could not find a case with this case number and PIN. Check both and try again.")
        return render(request, "victim/status_lookup.html", {"form": form}, status=404)
    return render(request, "victim/status_lookup.html", {"form": form})


def report_redirect(request: HttpRequest) -> HttpResponse:
    return redirect("report-new")
