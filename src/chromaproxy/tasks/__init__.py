"""Task registry: adding a task is one module plus one line here."""

from chromaproxy.tasks.aet import AetTask
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.colorize import ColorizationTask
from chromaproxy.tasks.context import ContextTask
from chromaproxy.tasks.flips import FlipsTask
from chromaproxy.tasks.iic import IicTask
from chromaproxy.tasks.image_model import GrayscalePixelcnnTask, PixelcnnTask, PyramidPixelcnnTask
from chromaproxy.tasks.pic import PicTask
from chromaproxy.tasks.pseudolabel import PseudolabelTask
from chromaproxy.tasks.relpos import RelposTask
from chromaproxy.tasks.rotation import RotationTask
from chromaproxy.tasks.sec import SecTask
from chromaproxy.tasks.supervised import SupervisedTask
from chromaproxy.tasks.transitive import TransitiveTask

TASKS: dict[str, type[Task]] = {
    SupervisedTask.name: SupervisedTask,
    ColorizationTask.name: ColorizationTask,
    RotationTask.name: RotationTask,
    FlipsTask.name: FlipsTask,
    AetTask.name: AetTask,
    ContextTask.name: ContextTask,
    RelposTask.name: RelposTask,
    IicTask.name: IicTask,
    PseudolabelTask.name: PseudolabelTask,
    PicTask.name: PicTask,
    TransitiveTask.name: TransitiveTask,
    PixelcnnTask.name: PixelcnnTask,
    GrayscalePixelcnnTask.name: GrayscalePixelcnnTask,
    PyramidPixelcnnTask.name: PyramidPixelcnnTask,
    SecTask.name: SecTask,
}

__all__ = ["TASKS", "Task", "TaskContext"]
