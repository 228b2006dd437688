"""The console's partner pages: partners, their exchange policy, their scoped API keys and key rotation.

They sit in the exchange app because partners' policy and key scopes are its own (``moderation`` never imports
``exchange``); ``moderation/urls.py`` includes ``urlpatterns`` by name under ``/console/admin/partners``. Views
parse input, check ``moderation.manage_partners`` before any lookup and call the services behind
``manage.py partner ...`` (``exchange.partners``), which audit every change with the admin as the actor. A new
key is in the answer page once and nowhere else.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from exchange.models import PartnerPolicy
from exchange.partners import partner_create, partner_key_create, partner_key_rotate, partner_policy_set
from exchange.selectors import partner_overview
from exchange.validation import ExchangeError
from hashing.models import Bank
from moderation.audit import actor_for_user
from moderation.models import ApiKey, Partner
from moderation.roles import PERM_MANAGE_PARTNERS, require

app_name = "console_partners"


def _banks() -> Any:
    return Bank.objects.filter(deleted_at=None).order_by("name")


class _PolicyFields(forms.Form):
    trust_level = forms.ChoiceField(choices=Partner.Trust.choices, label="Trust")
    auto_action = forms.ChoiceField(choices=PartnerPolicy.AutoAction.choices, label="Their hashes, on a match")
    allowed_banks = forms.ModelMultipleChoiceField(queryset=Bank.objects.none(), required=False,
                                                   label="Banks they may be given read access to")
    public_keys = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                  label="Their Ed25519 public keys (base64, one a line; two while they rotate)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_banks"].queryset = _banks()  # type: ignore[attr-defined]

    def keys(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["public_keys"].splitlines() if line.strip()]


class PartnerForm(_PolicyFields):
    name = forms.CharField(max_length=100)
    organisation = forms.CharField(max_length=200)
    field_order = ["name", "organisation"]


class PolicyForm(_PolicyFields):
    pass


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="Empty: \"<partner> exchange\".")
    read_banks = forms.ModelMultipleChoiceField(queryset=Bank.objects.none(), required=False,
                                                label="May read (allow-listed banks only)")
    write = forms.BooleanField(required=False, label="May push hashes into the partner's own bank")
    feedback = forms.BooleanField(required=False, label="May send feedback")

    def __init__(self, *args: Any, partner: Partner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        policy = getattr(partner, "exchange_policy", None)
        allowed = policy.allowed_banks.all() if policy is not None else Bank.objects.none()
        self.fields["read_banks"].queryset = allowed  # type: ignore[attr-defined]


def _errors_into(form: forms.Form, exc: ExchangeError) -> None:
    for name, text in exc.errors.items():
        form.add_error(name if name in form.fields else None, text)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store, max-age=0"  # a new key may be on the page
    return response


def _partner_or_404(partner_id: int) -> Partner:
    found = partner_overview(partner_id)
    if not found:
        raise Http404("No such partner.")
    return found[0]


def _list_page(request: HttpRequest, *, form: PartnerForm | None = None, status: int = 200) -> HttpResponse:
    return render(request, "console/admin/partners.html", {
        "partners": partner_overview(), "form": form or PartnerForm(initial={
            "trust_level": Partner.Trust.LOW, "auto_action": PartnerPolicy.AutoAction.QUEUE_FOR_REVIEW})},
        status=status)


@login_required
@require_GET
def partner_list(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "manage partners")
    return _list_page(request)


@login_required
@require_POST
def partner_add(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "add partners")
    form = PartnerForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            partner = partner_create(name=d["name"], organisation=d["organisation"], trust_level=d["trust_level"],
                                     auto_action=d["auto_action"], allowed_banks=list(d["allowed_banks"]),
                                     public_keys=form.keys(), actor=actor_for_user(request.user))
        except ExchangeError as exc:
            _errors_into(form, exc)
        else:
            messages.success(request, f"Added the partner {partner.name}.")
            return redirect("console_partners:partner", partner_id=partner.pk)
    return _list_page(request, form=form, status=400)


def _partner_page(request: HttpRequest, partner: Partner, *, policy_form: PolicyForm | None = None,
                  key_form: KeyForm | None = None, created: tuple[ApiKey, str] | None = None,
                  status: int = 200) -> HttpResponse:
    policy = getattr(partner, "exchange_policy", None)
    initial = {"trust_level": partner.trust_level,
               "auto_action": policy.auto_action if policy else PartnerPolicy.AutoAction.QUEUE_FOR_REVIEW,
               "allowed_banks": list(policy.allowed_banks.all()) if policy else [],
               "public_keys": "\n".join(policy.public_keys) if policy else ""}
    return _no_store(render(request, "console/admin/partner.html", {
        "partner": partner, "policy": policy, "created": created,
        "policy_form": policy_form or PolicyForm(initial=initial),
        "key_form": key_form or KeyForm(partner=partner),
    }, status=status))


@login_required
@require_GET
def partner_detail(request: HttpRequest, partner_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "manage partners")
    return _partner_page(request, _partner_or_404(partner_id))


@login_required
@require_POST
def partner_policy(request: HttpRequest, partner_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "change partners' policies")
    partner = _partner_or_404(partner_id)
    form = PolicyForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            partner_policy_set(partner=partner, auto_action=d["auto_action"], trust_level=d["trust_level"],
                               allowed_banks=list(d["allowed_banks"]), public_keys=form.keys(),
                               actor=actor_for_user(request.user))
        except ExchangeError as exc:
            _errors_into(form, exc)
        else:
            messages.success(request, f"Saved the policy of {partner.name}.")
            return redirect("console_partners:partner", partner_id=partner.pk)
    return _partner_page(request, partner, policy_form=form, status=400)


@login_required
@require_POST
def partner_key(request: HttpRequest, partner_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "create partner keys")
    partner = _partner_or_404(partner_id)
    form = KeyForm(request.POST, partner=partner)
    if form.is_valid():
        d = form.cleaned_data
        try:
            created = partner_key_create(partner=partner, read_banks=list(d["read_banks"]), write=d["write"],
                                         feedback=d["feedback"], name=d["name"], actor=actor_for_user(request.user))
        except ExchangeError as exc:
            _errors_into(form, exc)
        else:
            return _partner_page(request, _partner_or_404(partner_id), created=created)
    return _partner_page(request, partner, key_form=form, status=400)


@login_required
@require_POST
def key_rotate(request: HttpRequest, key_id: int) -> HttpResponse:
    require(request.user, PERM_MANAGE_PARTNERS, "rotate partner keys")
    old = ApiKey.objects.filter(pk=key_id, kind=ApiKey.Kind.PARTNER).first()
    if old is None or old.partner_id is None:
        raise Http404("No such partner key.")
    try:
        created = partner_key_rotate(api_key=old, actor=actor_for_user(request.user))
    except ExchangeError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
        return redirect("console_partners:partner", partner_id=old.partner_id)
    messages.success(request, f"Revoked {old.prefix}; the new key has the same scope.")
    return _partner_page(request, _partner_or_404(old.partner_id), created=created)


urlpatterns = [
    path("", partner_list, name="partners"),
    path("add", partner_add, name="partner-add"),
    path("<int:partner_id>", partner_detail, name="partner"),
    path("<int:partner_id>/policy", partner_policy, name="partner-policy"),
    path("<int:partner_id>/keys", partner_key, name="partner-key"),
    path("keys/<int:key_id>/rotate", key_rotate, name="key-rotate"),
]
