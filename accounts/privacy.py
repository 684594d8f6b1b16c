"""The personal-data registry: each app says how its rows about a person or a
workspace are exported, erased (or pseudonymized) and aged out.

Accounts must not import the apps above it (ai_features → usage → accounts;
billing → usage), so those apps register here from their AppConfig.ready()
(`<app>/privacy.py`) and the account/workspace deletions, the data export and
the retention task walk the registry. A model with a foreign key to a person
or a workspace that no entry names fails tests/accounts/test_privacy_registry.py:
new models must say what happens to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import User, Workspace

Rows = list[dict[str, Any]]
# A file in the export: (path inside the ZIP, text or bytes).
ExportFile = tuple[str, str | bytes]


@dataclass(frozen=True)
class Subject:
    """Whose data: one person (in all their workspaces) or one workspace."""

    user: User | None = None
    workspace: Workspace | None = None

    @property
    def kind(self) -> str:
        return "user" if self.user is not None else "workspace"


@dataclass(frozen=True)
class DataOwner:
    """One app's answer for its models.

    - `models`: "app_label.ModelName" of every model it handles (deleted,
      pseudonymized or kept); `kept` names those kept as records of account
      for the legal retention period (pseudonymized).
    - `export(subject)` → {section: rows}; `files(subject)` → extra files.
    - `erase_user(user, pseudonym)`: remove the person's rows or replace what
      identifies them with `pseudonym`. Runs inside the deletion's transaction.
    - `erase_workspace(workspace, pseudonym)`: the same for a workspace whose
      grace period has ended (memberships are removed by accounts afterwards).
    - `purge_content(workspace, cutoff)`: delete prompts/answers created before
      `cutoff` (the workspace's retention option); returns rows deleted.
    - `purge_retained(workspace)`: drop the kept records once the legal
      retention period of a deleted workspace has passed.
    """

    label: str
    models: tuple[str, ...]
    kept: tuple[str, ...] = ()
    export: Callable[[Subject], dict[str, Rows]] | None = None
    files: Callable[[Subject], Iterable[ExportFile]] | None = None
    erase_user: Callable[[User, str], None] | None = None
    erase_workspace: Callable[[Workspace, str], None] | None = None
    purge_content: Callable[[Workspace, datetime], int] | None = None
    purge_retained: Callable[[Workspace], None] | None = None


@dataclass
class ClosureHooks:
    """What closing a workspace means outside accounts (billing: the Stripe
    subscription). `describe(workspace)` → sentences for the confirmation page;
    `close(workspace, cancel_now=...)` runs when the owner confirms;
    `reopen(workspace)` when they undo within the grace period."""

    describe: Callable[..., list[str]]
    close: Callable[..., None]
    reopen: Callable[..., None] | None = None


@dataclass
class _Registry:
    owners: list[DataOwner] = field(default_factory=list)
    closures: list[ClosureHooks] = field(default_factory=list)


_registry = _Registry()


def register(owner: DataOwner) -> DataOwner:
    _registry.owners = [o for o in _registry.owners if o.label != owner.label] + [owner]
    return owner


def register_closure(hooks: ClosureHooks) -> None:
    _registry.closures.append(hooks)


def data_owners() -> list[DataOwner]:
    return list(_registry.owners)


def closure_hooks() -> list[ClosureHooks]:
    return list(_registry.closures)


def covered_models() -> set[str]:
    return {name for owner in _registry.owners for name in owner.models}


def kept_models() -> set[str]:
    return {name for owner in _registry.owners for name in owner.kept}


def user_pseudonym(user: User) -> str:
    """Stable per person, reveals nothing: what replaces their name and email."""
    return f"deleted-user-{user.pk}"


def workspace_pseudonym(workspace: Workspace) -> str:
    return f"Deleted workspace #{workspace.pk}"


def scrub(value: Any, secrets: Iterable[str], replacement: str) -> Any:
    """`value` (str / list / dict, e.g. an audit event's data) with every
    occurrence of each secret (case-insensitive) replaced."""
    import re

    needles = [s for s in secrets if s]
    if not needles:
        return value
    pattern = re.compile("|".join(re.escape(s) for s in needles), re.IGNORECASE)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub(replacement, v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    return walk(value)


def scrub_pattern(value: Any, pattern, replacement: str) -> Any:
    """Like `scrub`, for a compiled regular expression (e.g. any email address)."""
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, list):
        return [scrub_pattern(x, pattern, replacement) for x in value]
    if isinstance(value, dict):
        return {k: scrub_pattern(x, pattern, replacement) for k, x in value.items()}
    return value
