"""Forms of the finance pages: the period/status filters and the export form."""

from __future__ import annotations

import datetime as dt

from django import forms

from billing.periods import parse_period
from config.errors import InvalidRequest
from config.exports import ExportKind


class PeriodFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Inclusive",
    )
    status = forms.ChoiceField(required=False)

    def __init__(self, *args, statuses: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status")] + [(s, s) for s in statuses]

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start must be on or before the end.")
        return data

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        if not self.is_valid():
            return None, None
        start, end = self.cleaned_data.get("start"), self.cleaned_data.get("end")
        return parse_period(start.isoformat() if start else None, end.isoformat() if end else None)


class BackofficeFilterForm(PeriodFilterForm):
    tier = forms.ChoiceField(required=False)
    country = forms.ChoiceField(required=False)
    currency = forms.ChoiceField(required=False)

    def __init__(self, *args, choices: dict[str, list[str]], **kwargs) -> None:
        super().__init__(*args, statuses=choices["statuses"], **kwargs)
        self.fields["tier"].choices = [("", "Any tier")] + [(t, t) for t in choices["tiers"]]
        self.fields["country"].choices = [("", "Any country")] + [
            (c, c) for c in choices["countries"]
        ]
        self.fields["currency"].choices = [("", "Any currency")] + [
            (c, c.upper()) for c in choices["currencies"]
        ]

    def extra_filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        keys = ("status", "tier", "country", "currency")
        return {k: self.cleaned_data[k] for k in keys if self.cleaned_data.get(k)}


class ExportForm(forms.Form):
    kind = forms.ChoiceField()
    format = forms.ChoiceField(choices=[("xlsx", "Excel (XLSX)"), ("csv", "CSV")])
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, kinds: list[ExportKind], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(k.kind, k.title) for k in kinds]

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        start, end = self.cleaned_data.get("start"), self.cleaned_data.get("end")
        try:
            return parse_period(
                start.isoformat() if start else None, end.isoformat() if end else None
            )
        except InvalidRequest as exc:
            raise forms.ValidationError(exc.message) from None


class ClosePackForm(forms.Form):
    month = forms.CharField(
        widget=forms.TextInput(attrs={"type": "month"}), help_text="A month that has ended"
    )

    def clean_month(self) -> dt.datetime:
        try:
            year, month = (int(p) for p in self.cleaned_data["month"].split("-"))
            return dt.datetime(year, month, 1, tzinfo=dt.UTC)
        except (ValueError, TypeError):
            raise forms.ValidationError("Choose a month, e.g. 2026-11.") from None
