"""The export registry is the plug-in point for other apps (economics' margin,
trust's account_data ZIP): a registered kind runs through the same jobs, API,
links and failure handling without touching billing."""

from __future__ import annotations

import zipfile
from urllib.parse import urlparse

import pytest

from config import exports as registry
from config.exports import Scope, register
from config.tabular import Column, Kind, Sheet

pytestmark = pytest.mark.django_db


@pytest.fixture
def temporary_kinds():
    registry.discover()
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _zip_writer(ctx, out) -> None:
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("me.json", f'{{"workspace": "{ctx.workspace.name}"}}')
    ctx.progress(50)


def _broken(ctx):
    raise RuntimeError("secret detail that must not reach the client")


def test_a_registered_zip_kind_runs_through_the_api(
    client, make_member, workspace, temporary_kinds, django_capture_on_commit_callbacks
):
    register(
        "account_data", title="My data", formats=("zip",), perm="use_features", writer=_zip_writer
    )
    member = make_member(workspace=workspace, role="member")
    client.force_login(member.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/exports",
            {"kind": "account_data", "format": "zip"},
            content_type="application/json",
        )
    assert response.status_code == 202
    detail = client.get(f"/api/v1/exports/{response.json()['id']}").json()
    assert detail["status"] == "done"
    link = urlparse(detail["download_url"])
    download = client.get(f"{link.path}?{link.query}")
    assert download["Content-Type"] == "application/zip"
    import io

    body = b"".join(download.streaming_content)
    assert workspace.name in zipfile.ZipFile(io.BytesIO(body)).read("me.json").decode()


def test_a_failing_kind_is_recorded_not_leaked(
    client, make_member, workspace, temporary_kinds, django_capture_on_commit_callbacks
):
    register("broken", title="Broken", formats=("csv",), sheets=_broken)
    finance = make_member(workspace=workspace, role="finance")
    client.force_login(finance.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/exports", {"kind": "broken", "format": "csv"}, content_type="application/json"
        )
    detail = client.get(f"/api/v1/exports/{response.json()['id']}").json()
    assert detail["status"] == "failed" and "download_url" not in detail
    from billing.models_exports import ExportJob

    assert "secret" not in ExportJob.objects.get(pk=detail["id"]).error


def test_backoffice_only_kinds_are_refused_to_customers(client, make_member, workspace):
    owner = make_member(workspace=workspace, role="owner")
    client.force_login(owner.user)
    response = client.post(
        "/api/v1/exports", {"kind": "payments", "format": "csv"}, content_type="application/json"
    )
    assert response.status_code == 403


def test_register_checks_its_arguments():
    with pytest.raises(ValueError):
        register("x", title="x", formats=("csv",))
    with pytest.raises(ValueError):
        register("x", title="x", formats=("zip",), sheets=lambda ctx: [Sheet("a", [], [])])
    with pytest.raises(ValueError):
        register("x", title="x", formats=("pdf",), writer=_zip_writer)
    assert Column("a", Kind.MONEY).kind == "money" and Scope.BOTH == "both"
