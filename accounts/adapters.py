from allauth.account.adapter import DefaultAccountAdapter

from accounts.services import default_workspace_name, workspace_create


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit and not user.memberships.exists():
            workspace_create(name=default_workspace_name(user), owner=user)
        return user
