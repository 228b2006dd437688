"""Forms for the console: they only parse; services decide and check roles."""

from __future__ import annotations

from django import forms

from moderation.models import ConsolePreference, Decision, MessageTemplate, Report, ReviewTask
from moderation.models.console import MAX_BLUR_PX
from moderation.selectors.queue import DEADLINE_BANDS, QUEUE_REASON_CODES, QueueFilters

_ANY = [("", "any")]


class QueueFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "every undecided"), *ReviewTask.State.choices])
    reason = forms.ChoiceField(required=False, choices=_ANY + [(c, c.replace("_", " ")) for c in QUEUE_REASON_CODES])
    deadline = forms.ChoiceField(required=False, label="Deadline",
                                 choices=_ANY + [(key, label) for key, label, _l, _h in DEADLINE_BANDS])
    assignee = forms.CharField(required=False, max_length=150,
                               help_text='"me", "none" or a username')
    source = forms.ChoiceField(required=False, choices=_ANY + list(Report.Source.choices))
    has_match = forms.ChoiceField(required=False, label="Bank match",
                                  choices=[("", "any"), ("yes", "has a match"), ("no", "no match")])
    score_min = forms.FloatField(required=False, min_value=0, max_value=1, label="Score from")
    score_max = forms.FloatField(required=False, min_value=0, max_value=1, label="Score to")
    queue = forms.ChoiceField(required=False, choices=[])

    def __init__(self, *args: object, queues: list[tuple[str, str]] | None = None, **kwargs: object):
        """``queues``: (slug, name) of the named queues to filter by (selectors/queue.queue_choices)."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["queue"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [*_ANY, *(queues or []), ("none", "in no queue")]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", "The upper score must not be below the lower one.")
        return data

    def filters(self) -> QueueFilters:
        d = self.cleaned_data if self.is_valid() else {}
        has = d.get("has_match") or ""
        return QueueFilters(state=d.get("state") or "", reason=d.get("reason") or "",
                            deadline_band=d.get("deadline") or "", assignee=(d.get("assignee") or "").strip(),
                            source=d.get("source") or "", has_match={"yes": True, "no": False}.get(has),
                            score_min=d.get("score_min"), score_max=d.get("score_max"),
                            queue=d.get("queue") or "")


class ConsoleDecideForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.Outcome.choices)
    reason = forms.ChoiceField(choices=Decision.Reason.choices)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Rationale")
    reporter_template = forms.CharField(required=False, max_length=60)
    uploader_template = forms.CharField(required=False, max_length=60)
    also = forms.TypedMultipleChoiceField(required=False, coerce=int, choices=[])

    def __init__(self, *args: object, group_task_ids: list[int] | None = None, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        also = self.fields["also"]
        assert isinstance(also, forms.TypedMultipleChoiceField)
        also.choices = [(pk, str(pk)) for pk in group_task_ids or []]


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = ConsolePreference
        fields = ["blur_px", "greyscale", "video_autoplay", "reveal_mode"]
        labels = {"blur_px": "Blur strength (pixels)", "greyscale": "Show media in greyscale",
                  "video_autoplay": "Play videos automatically", "reveal_mode": "How to reveal media"}

    def clean_blur_px(self) -> int:
        value = int(self.cleaned_data["blur_px"])
        if value > MAX_BLUR_PX:
            raise forms.ValidationError(f"Use a blur of at most {MAX_BLUR_PX} pixels.")
        return value


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=100, help_text='e.g. "user:3" or "system"')
    role = forms.CharField(required=False, max_length=50)
    action = forms.CharField(required=False, max_length=100, help_text='a prefix, e.g. "decision."')
    object_type = forms.CharField(required=False, max_length=50)
    object_id = forms.CharField(required=False, max_length=50)
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)


class MessageTemplateForm(forms.Form):
    key = forms.SlugField(max_length=60, help_text="The same key as a built-in template overrides it.")
    audience = forms.ChoiceField(choices=MessageTemplate.Audience.choices)
    reason = forms.ChoiceField(choices=Decision.Reason.choices)
    title = forms.CharField(max_length=200, help_text="What moderators see in the picker.")
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    subject = forms.CharField(max_length=200)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), help_text="{{ case_number }} is filled in.")
    html = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                           help_text="Left empty, it is made from the text.")
    active = forms.BooleanField(required=False, initial=True)
