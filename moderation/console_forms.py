"""Forms for the console: they only parse; services decide and check roles."""

from __future__ import annotations

from django import forms

from moderation.models import ConsolePreference, Decision, MessageTemplate, Report, ReviewTask
from moderation.models.console import MAX_BLUR_PX
from moderation.selectors.queue import DEADLINE_BANDS, QUEUE_REASON_CODES, QUEUE_SORTS, QueueFilters, case_numbers
from moderation.services.decisions import REASONS_BY_OUTCOME

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
    sort = forms.ChoiceField(required=False, label="Order", choices=list(QUEUE_SORTS))

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
                            queue=d.get("queue") or "", sort=d.get("sort") or "")


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


# At most two queue pages (views/console.QUEUE_PAGE_SIZE is 50) in one all-or-none transaction: it locks each
# case in turn, so a bigger batch would hold the first cases' locks while the last ones are decided.
BULK_DECIDE_MAX = 100
# The outcomes the queue's bulk panel offers; the other two have their own steps on the case page.
BULK_OUTCOMES: list[tuple[str, str]] = [(Decision.Outcome.TAKEDOWN, "Take down"),
                                        (Decision.Outcome.NO_VIOLATION, "No violation")]


class TaskIdsField(forms.Field):
    """Task ids, each a positive integer, between 1 and ``BULK_DECIDE_MAX`` of them (duplicates dropped)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[int]:
        values = [str(v).strip() for v in (value or [])] if isinstance(value, list | tuple) else (
            [str(value).strip()] if value else [])
        if not values:
            raise forms.ValidationError("Tick at least one case in the queue.", code="required")
        bad = [v for v in values if not v.isdigit()]
        if bad:
            raise forms.ValidationError(f"{bad[0][:20]!r} is not a case id; reload the queue and tick again.",
                                        code="invalid")
        ids = list(dict.fromkeys(int(v) for v in values))
        if len(ids) > BULK_DECIDE_MAX:
            raise forms.ValidationError(f"{len(ids)} cases are ticked; decide at most {BULK_DECIDE_MAX} at once.",
                                        code="max")
        return ids

    def validate(self, value: object) -> None:
        pass  # to_python has checked everything a value can get wrong


class BulkDecideForm(forms.Form):
    """The queue's bulk decision: the ticked cases, one outcome, one reason fitting it, and an optional note and
    message templates. ``case_numbers`` afterwards holds (case number, state) per ticked task, to name them."""

    tasks = TaskIdsField(label="Ticked cases")
    decision = forms.ChoiceField(choices=BULK_OUTCOMES, label="Decision",
                                 error_messages={"required": "Press Take down or No violation."})
    reason = forms.ChoiceField(choices=Decision.Reason.choices, label="Reason",
                               error_messages={"required": "Choose a reason."})
    note = forms.CharField(required=False, max_length=5000, label="Rationale")
    reporter_template = forms.CharField(required=False, max_length=60, label="Message to the reporters")
    uploader_template = forms.CharField(required=False, max_length=60, label="Statement to the uploaders")
    back = forms.CharField(required=False, max_length=2000)  # the queue's query string, to return to it

    case_numbers: dict[int, tuple[str, str]]

    def clean_tasks(self) -> list[int]:
        ids: list[int] = self.cleaned_data["tasks"]
        self.case_numbers = case_numbers(ids)
        missing = [i for i in ids if i not in self.case_numbers]
        if missing:
            raise forms.ValidationError(f"There is no case with id {missing[0]}; reload the queue and tick again.")
        return ids

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        outcome, reason = data.get("decision"), data.get("reason")
        if outcome and reason and reason not in REASONS_BY_OUTCOME[str(outcome)]:
            label = dict(Decision.Reason.choices)[str(reason)]
            self.add_error("reason", f"“{label}” is not a reason for “{dict(BULK_OUTCOMES)[str(outcome)]}”; "
                                     "choose one under that decision.")
        if reason == Decision.Reason.OTHER and not str(data.get("note") or "").strip():
            self.add_error("note", "Explain the decision when the reason is “Other”.")
        return data

    def error_text(self) -> str:
        """The errors in one line, each after its field's label: "Reason: Choose a reason." """
        return " ".join((f"{self.fields[name].label}: " if name in self.fields else "") + " ".join(map(str, errors))
                        for name, errors in self.errors.items())


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
