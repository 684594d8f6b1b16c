from __future__ import annotations

from django import forms

from config import clock
from usage.models import CapPeriod


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    token_cap = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="Tokens this key may use (empty: no cap)",
    )
    cap_period = forms.ChoiceField(choices=CapPeriod.choices, initial=CapPeriod.MONTH)
    rpm_limit = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, label="Requests per minute"
    )
    tpm_limit = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, label="Tokens per minute"
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= clock.now():
            raise forms.ValidationError("Pick a moment in the future.")
        return value
