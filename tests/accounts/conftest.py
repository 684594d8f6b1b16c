import pytest

from tests.factories import PASSWORD


@pytest.fixture
def owner_client(client, workspace, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def password():
    return PASSWORD
