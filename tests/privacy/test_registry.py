"""Every model with a foreign key to a person, a workspace or a membership is
named in the personal-data registry (accounts/privacy.py): a new model must say
whether it is exported, erased or kept. If this fails for your model, add it to
your app's `<app>/privacy.py` entry (see docs/architecture.md "Privacy")."""

from __future__ import annotations

from django.apps import apps

from accounts import privacy
from accounts.models import Membership, User, Workspace


def test_every_model_holding_people_or_workspaces_is_registered():
    covered = privacy.covered_models()
    missing = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            held = field.is_relation and field.related_model in (User, Workspace, Membership)
            if held and model._meta.label not in covered:
                missing.add(model._meta.label)
    assert missing == set(), f"register these in a privacy.DataOwner: {sorted(missing)}"


def test_kept_models_are_covered_and_apps_registered_their_exports():
    assert privacy.kept_models() <= privacy.covered_models()
    labels = {owner.label for owner in privacy.data_owners()}
    assert {"accounts", "usage", "billing", "ai_features"} <= labels
    assert [h for h in privacy.closure_hooks()]  # billing closes the subscription


def test_scrub_replaces_everywhere_case_insensitively():
    data = {"who": "Ann@Example.com", "list": ["x ann@example.com y"], "n": 3}
    assert privacy.scrub(data, ["ann@example.com"], "P") == {"who": "P", "list": ["x P y"], "n": 3}
