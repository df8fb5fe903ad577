"""Training tasks: real data, a model and a loop, behind one interface (:mod:`weightdecay.tasks.base`).

Built-in tasks (``weightdecay tasks`` lists them with their data status): ``ridge``, ``digits-mlp``,
``fashion-mlp``, ``fashion-cnn``, ``shakespeare-charlm``, ``cifar10-cnn``. ``docs/tasks.md`` documents their
defaults and options, and how to register a task of your own.
"""

from weightdecay.tasks.base import Task, TrainConfig, TrainResult, get_task, list_tasks, register_task
from weightdecay.tasks.images import Cifar10CNN, Cifar10Tutorial, DigitsMLP, FashionCNN, FashionMLP
from weightdecay.tasks.ridge import RidgeTask
from weightdecay.tasks.shakespeare import ShakespeareCharLM

__all__ = ["Task", "TrainConfig", "TrainResult", "get_task", "list_tasks", "register_task"]

for _task in (RidgeTask(), DigitsMLP(), FashionMLP(), FashionCNN(), ShakespeareCharLM(), Cifar10CNN(),
              Cifar10Tutorial()):
    register_task(_task, replace_existing=True)
