"""The old "Insights" URLs: the usage dashboard became the one usage page
(/usage/, in the usage app). Bookmarks keep working."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


def _to(name: str, request: HttpRequest) -> HttpResponse:
    query = request.GET.urlencode()
    return redirect(reverse(name) + (f"?{query}" if query else ""))


def dashboard(request: HttpRequest) -> HttpResponse:
    return _to("usage:usage", request)


def export_csv(request: HttpRequest) -> HttpResponse:
    return _to("usage:usage_csv", request)
