"""Task registry: adding a task is one module plus one line here."""

from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.colorize import ColorizationTask
from chromaproxy.tasks.supervised import SupervisedTask

TASKS: dict[str, type[Task]] = {
    SupervisedTask.name: SupervisedTask,
    ColorizationTask.name: ColorizationTask,
}

__all__ = ["TASKS", "Task", "TaskContext"]
