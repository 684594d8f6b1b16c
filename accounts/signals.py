"""Signals other rooms may listen to (accounts never imports them).

`membership_removed(sender, workspace, user)` is sent inside the transaction
that removes someone from a workspace (removal or leaving), so e.g. the meter
can revoke that person's API keys for the workspace atomically."""

from django.dispatch import Signal

membership_removed = Signal()
