"""The console's admin pages: hash banks, API keys, users and their roles (the admin role's work).

Views parse input and call one service or selector; the services check the roles again and audit every change.
The role check comes before any lookup, so ids stay private to those who may manage them.
"""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from hashing.models import Bank
from moderation.models import ApiKey
from moderation.roles import PERM_MANAGE_BANKS, PERM_MANAGE_PARTNERS, PERM_MANAGE_USERS, ROLE_ORDER, require
from moderation.selectors import admin as admin_selectors
from moderation.services import admin_access, admin_banks
from moderation.services.api_keys import FLAGGER_SOURCES

ADMIN_PERMISSIONS = (PERM_MANAGE_BANKS, PERM_MANAGE_PARTNERS, PERM_MANAGE_USERS)
# An upload larger than this is refused before it is read: the command (no limit) is for bigger files.
IMPORT_MAX_BYTES = 50 * 1024 * 1024


class BankSettingsForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Match against this bank")
    blocks_uploads = forms.BooleanField(required=False, label="A match blocks the upload (otherwise: review)")
    on_stream_match = forms.ChoiceField(choices=Bank.OnStreamMatch.choices, label="On a proactive-scanning match")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in admin_banks.PERCEPTUAL:
            self.fields[f"threshold_{name}"] = forms.IntegerField(
                required=False, min_value=0, label=f"{name} match distance",
                help_text="Empty: the algorithm's default.")

    def thresholds(self) -> dict[str, int]:
        return {name: self.cleaned_data[f"threshold_{name}"] for name in admin_banks.PERCEPTUAL
                if self.cleaned_data.get(f"threshold_{name}") is not None}


class BankImportForm(forms.Form):
    file = forms.FileField(label="File of hashes (JSON lines or CSV: algorithm, value in hex, optional source, "
                                 "status)")
    format = forms.ChoiceField(choices=[("", "From the file name"), ("jsonl", "JSON lines"), ("csv", "CSV")],
                               required=False)


class ApiKeyForm(forms.Form):
    kind = forms.ChoiceField(choices=[(ApiKey.Kind.PLATFORM.value, ApiKey.Kind.PLATFORM.label),
                                      (ApiKey.Kind.FLAGGER.value, ApiKey.Kind.FLAGGER.label)])
    name = forms.CharField(max_length=100, help_text="The platform or the notice sender the key is for.")
    source = forms.ChoiceField(choices=[("", "none (platform keys)"), *((s.value, s.label) for s in FLAGGER_SOURCES)],
                               required=False, label="Notices filed as (flagger keys)")
    curation = forms.BooleanField(required=False, label="May also change banks through the HMA curation routes")


def _bank_or_404(bank_id: int) -> admin_selectors.BankRow:
    rows = admin_selectors.bank_rows(bank_id=bank_id)
    if not rows:
        raise Http404("No such bank.")
    return rows[0]


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if not any(user.has_perm(p) for p in ADMIN_PERMISSIONS):
        raise PermissionDenied("Your role does not allow you to use the admin pages.")
    return render(request, "console/admin/index.html")


@login_required
@require_GET
def bank_list(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_BANKS, "manage hash banks")
    return render(request, "console/admin/banks.html", {"rows": admin_selectors.bank_rows(),
                                                        "statuses": admin_selectors.STATUSES})


def _settings_initial(bank: Bank) -> dict[str, Any]:
    initial: dict[str, Any] = {"enabled": bank.enabled, "blocks_uploads": bank.blocks_uploads,
                               "on_stream_match": bank.on_stream_match}
    for name in admin_banks.PERCEPTUAL:
        initial[f"threshold_{name}"] = bank.thresholds.get(name)
    return initial


def _bank_page(request: HttpRequest, row: admin_selectors.BankRow, *, settings_form: BankSettingsForm | None = None,
               import_form: BankImportForm | None = None, outcome: admin_banks.ImportOutcome | None = None,
               status: int = 200) -> HttpResponse:
    return render(request, "console/admin/bank.html", {
        "row": row, "bank": row.bank, "statuses": admin_selectors.STATUSES,
        "settings_form": settings_form or BankSettingsForm(initial=_settings_initial(row.bank)),
        "import_form": import_form or BankImportForm(), "outcome": outcome,
    }, status=status)


@login_required
@require_GET
def bank_detail(request: HttpRequest, bank_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_BANKS, "manage hash banks")
    return _bank_page(request, _bank_or_404(bank_id))


@login_required
@require_POST
def bank_settings(request: HttpRequest, bank_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_BANKS, "change hash banks")
    row = _bank_or_404(bank_id)
    form = BankSettingsForm(request.POST)
    if form.is_valid():
        try:
            admin_banks.bank_settings_save(user=request.user, bank_id=bank_id, enabled=form.cleaned_data["enabled"],
                                           blocks_uploads=form.cleaned_data["blocks_uploads"],
                                           thresholds=form.thresholds(),
                                           on_stream_match=form.cleaned_data["on_stream_match"])
        except admin_banks.BankChangeRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved the settings of {row.bank.name}; matchers use them at their next "
                                      "refresh.")
            return redirect("console_admin:bank", bank_id=bank_id)
    return _bank_page(request, row, settings_form=form, status=400)


@login_required
@require_POST
def bank_import(request: HttpRequest, bank_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_BANKS, "import into hash banks")
    row = _bank_or_404(bank_id)
    form = BankImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _bank_page(request, row, import_form=form, status=400)
    upload = form.cleaned_data["file"]
    if upload.size > IMPORT_MAX_BYTES:
        form.add_error("file", f"The file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB; import it with "
                               f"manage.py bank import {row.bank.name} FILE --user {request.user.get_username()}.")
        return _bank_page(request, row, import_form=form, status=400)
    try:
        fmt = admin_banks.import_format(upload.name or "", form.cleaned_data["format"])
        handle = io.TextIOWrapper(upload.file, encoding="utf-8", errors="replace", newline="")
        outcome = admin_banks.bank_import_file(user=request.user, bank_id=bank_id, handle=handle, fmt=fmt,
                                               filename=upload.name or "upload")
    except admin_banks.BankChangeRefused as exc:
        form.add_error("file", str(exc))
        return _bank_page(request, row, import_form=form, status=400)
    # The counts are known now: the import runs in this request, batch by batch, as the command's does.
    return _bank_page(request, _bank_or_404(bank_id), outcome=outcome)


@login_required
@require_GET
def bank_export(request: HttpRequest, bank_id: int) -> StreamingHttpResponse:
    require(request.user, PERM_MANAGE_BANKS, "export hash banks")
    row = _bank_or_404(bank_id)
    fmt = request.GET.get("format", "jsonl")
    if fmt not in admin_banks.EXPORT_FORMATS:
        raise Http404("Choose format=jsonl or format=csv.")
    lines = admin_banks.bank_export_lines(user=request.user, bank_id=bank_id, fmt=fmt,
                                          include_inactive=request.GET.get("all") == "1")
    response = StreamingHttpResponse(lines, content_type="text/csv" if fmt == "csv" else "application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{row.bank.name}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _keys_page(request: HttpRequest, *, form: ApiKeyForm | None = None, created: tuple[ApiKey, str] | None = None,
               status: int = 200) -> HttpResponse:
    response = render(request, "console/admin/api_keys.html", {
        "keys": admin_selectors.api_key_rows(), "form": form or ApiKeyForm(), "created": created,
    }, status=status)
    response["Cache-Control"] = "private, no-store, max-age=0"  # a new key is on this page once
    return response


@login_required
@require_GET
def api_key_list(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "manage API keys")
    return _keys_page(request)


@login_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "create API keys")
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, form=form, status=400)
    d = form.cleaned_data
    try:
        created = admin_access.console_api_key_create(user=request.user, kind=d["kind"], name=d["name"],
                                                      source=d["source"], curation=d["curation"])
    except admin_access.AccessChangeRefused as exc:
        form.add_error(None, str(exc))
        return _keys_page(request, form=form, status=400)
    # Rendered, not redirected: the key is in this answer only, and never stored or shown again.
    return _keys_page(request, created=created)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "revoke API keys")
    if not ApiKey.objects.filter(pk=key_id).exists():
        raise Http404("No such key.")
    try:
        row = admin_access.console_api_key_revoke(user=request.user, key_id=key_id)
    except admin_access.AccessChangeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Revoked the key {row.name} ({row.prefix}).")
    return redirect("console_admin:api-keys")


@login_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_USERS, "manage users")
    return render(request, "console/admin/users.html", {"rows": admin_selectors.user_rows()})


def _target_or_404(user_id: int) -> None:
    if not get_user_model()._default_manager.filter(pk=user_id).exists():
        raise Http404("No such user.")


@login_required
@require_POST
def user_role(request: HttpRequest, user_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_USERS, "change users' roles")
    _target_or_404(user_id)
    role, change = request.POST.get("role", ""), request.POST.get("change", "")
    if role not in ROLE_ORDER or change not in ("add", "remove"):
        messages.error(request, "Choose a role and whether to add or remove it.")
        return redirect("console_admin:users")
    try:
        target = admin_access.user_role_set(user=request.user, target_id=user_id, role=role, held=change == "add")
    except admin_access.AccessChangeRefused as exc:
        messages.error(request, str(exc))
    else:
        done = "Gave" if change == "add" else "Took away"
        messages.success(request, f"{done} the role {role} {'to' if change == 'add' else 'from'} "
                                  f"{target.get_username()}.")
    return redirect("console_admin:users")


@login_required
@require_POST
def user_active(request: HttpRequest, user_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_USERS, "deactivate users")
    _target_or_404(user_id)
    active = request.POST.get("active") == "1"
    try:
        target = admin_access.user_active_set(user=request.user, target_id=user_id, active=active)
    except admin_access.AccessChangeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{'Reactivated' if active else 'Deactivated'} {target.get_username()}.")
    return redirect("console_admin:users")


urlpatterns = [
    path("", index, name="index"),
    path("banks", bank_list, name="banks"),
    path("banks/<int:bank_id>", bank_detail, name="bank"),
    path("banks/<int:bank_id>/settings", bank_settings, name="bank-settings"),
    path("banks/<int:bank_id>/import", bank_import, name="bank-import"),
    path("banks/<int:bank_id>/export", bank_export, name="bank-export"),
    path("keys", api_key_list, name="api-keys"),
    path("keys/create", api_key_create, name="api-key-create"),
    path("keys/<int:key_id>/revoke", api_key_revoke, name="api-key-revoke"),
    path("users", user_list, name="users"),
    path("users/<int:user_id>/role", user_role, name="user-role"),
    path("users/<int:user_id>/active", user_active, name="user-active"),
]
