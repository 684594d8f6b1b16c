import pytest

from accounts.models import Membership
from tests.factories import PASSWORD


@pytest.fixture
def owner_client(client, workspace, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def owner_membership(workspace, owner):
    return Membership.objects.get(workspace=workspace, user=owner)


@pytest.fixture
def password():
    return PASSWORD


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
