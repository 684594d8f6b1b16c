"""Services queue Celery tasks by name through here (they never import tasks):
after the surrounding transaction commits, so the worker finds the rows."""

from __future__ import annotations

from django.db import transaction


def on_commit(task_name: str, *args) -> None:
    def send() -> None:
        from config.celery import app

        app.tasks[task_name].delay(*args)

    transaction.on_commit(send, robust=True)
