"""Training tasks: real data, a model and a loop, behind one interface (:mod:`weightdecay.tasks.base`)."""

from weightdecay.tasks.base import Task, TrainConfig, TrainResult, get_task, list_tasks, register_task

__all__ = ["Task", "TrainConfig", "TrainResult", "get_task", "list_tasks", "register_task"]
