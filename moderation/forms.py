"""HTML forms for the victim pages and the console. They only parse; services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from moderation.models import Report


class ReportForm(forms.Form):
    """Every field parses leniently: the intake service checks the notice, so a person sees every
    problem at once in the error summary rather than one round at a time."""

    optional_fields = frozenset({"locations", "image"})

    reporter_name = forms.CharField(label=_("Your name"), max_length=200, required=False)
    reporter_email = forms.CharField(label=_("Your email address"), max_length=254,
                                     help_text=_("We write to you here about this report only."), required=False)
    relationship = forms.ChoiceField(label=_("Who are you?"), choices=Report.Relationship.choices,
                                     widget=forms.RadioSelect, required=False)
    locations = forms.CharField(
        label=_("Where is the content?"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One link per line, e.g. https://… or demo://content/3 on the demo platform."))
    image = forms.FileField(
        label=_("Or attach the image or video"), required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,video/*"}),
        help_text=_("Only if you cannot give a link. It is stored privately and deleted when the case closes."))
    statement = forms.CharField(
        label=_("Why should it be removed?"), widget=forms.Textarea(attrs={"rows": 4}), required=False,
        help_text=_("Briefly say that the image is intimate and shared without consent, "
                    "and anything else that helps us (for example, that it was made with AI)."))
    good_faith = forms.BooleanField(
        label=_("I believe in good faith that this content is shared without the consent of the person shown, "
                "and what I have said is true to the best of my knowledge."), required=False)
    adult_confirmed = forms.BooleanField(label=_("The person shown is 18 or older."), required=False)
    signature = forms.CharField(label=_("Signature: type your full name"), max_length=200, required=False)

    def location_list(self) -> list[str]:
        raw = self.cleaned_data.get("locations") or ""
        return [line.strip() for line in raw.splitlines() if line.strip()]


class StatusLookupForm(forms.Form):
    case_number = forms.CharField(label=_("Case number"), max_length=30)
    pin = forms.CharField(label=_("PIN"), max_length=30, widget=forms.PasswordInput(render_value=False))
