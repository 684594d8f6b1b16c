"""How billing's services queue background work: by task name, on commit.

Tasks call services, never the other way round (the import contracts in
pyproject.toml hold it): a service names the task it wants, and the task is
looked up in `billing.tasks` only when the transaction commits, so a worker
always finds the rows the service wrote and a rolled-back write queues nothing."""

from __future__ import annotations

from django.db import transaction
from django.utils.module_loading import import_string

TASKS_MODULE = "billing.tasks"


def enqueue_on_commit(task_name: str, *args: object) -> None:
    """Queue `billing.tasks.<task_name>(*args)` (primary keys and plain values
    only) once the current transaction commits."""

    def send() -> None:
        import_string(f"{TASKS_MODULE}.{task_name}").delay(*args)

    transaction.on_commit(send, robust=True)
