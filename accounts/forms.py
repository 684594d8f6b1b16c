from __future__ import annotations

from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Membership
from accounts.roles import Role


class LoginForm(AllauthLoginForm):
    """allauth's login, refusing suspended people with the operator's reason."""

    def clean(self):
        cleaned = super().clean()
        user = getattr(self, "user", None)
        if user is not None and user.is_suspended:
            reason = user.suspended_reason or "No reason was given."
            raise ValidationError(
                f"Your account is suspended: {reason} "
                "Contact support if you think this is a mistake.",
                code="account_suspended",
            )
        return cleaned


class ProfileForm(forms.Form):
    name = forms.CharField(
        max_length=150, required=False, help_text="Shown to your teammates and in invitations."
    )


class WorkspaceNameForm(forms.Form):
    name = forms.CharField(max_length=100, label="Workspace name")


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, required=False)

    def __init__(self, *args, actor: Membership | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if actor is not None and actor.role != Role.OWNER:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]

    def clean_role(self) -> str:
        return self.cleaned_data.get("role") or Role.MEMBER


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TransferOwnershipForm(forms.Form):
    new_owner = forms.ModelChoiceField(
        queryset=Membership.objects.none(), label="New owner", empty_label=None
    )
    confirm = forms.BooleanField(
        label="I understand I will become an admin of this workspace.", required=True
    )

    def __init__(self, *args, actor: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["new_owner"]
        field.queryset = (
            Membership.objects.for_workspace(actor.workspace)
            .exclude(pk=actor.pk)
            .select_related("user")
        )
        field.label_from_instance = lambda m: f"{m.user.email} ({m.get_role_display()})"


class SuspendForm(forms.Form):
    """Admin's intermediate page for the suspend actions."""

    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Shown to the people affected (on every page and the login page).",
    )
