"""Tasks: real data sets as TaskData (splits, class count, input spec, metric), from a registry;
sequence tasks (three-moons, regbench, shakespeare) as SequenceTaskData (hetmem.data.sequence).

Importing this package registers every task; heavy dependencies (scikit-learn, mlxtend,
torch_geometric, ogb, rdkit) are imported only when a task is loaded.
"""

from hetmem.data import cifar, images, molecules, ogb, regbench, shakespeare, tabular, three_moons, tu  # noqa: F401  (registration)
from hetmem.data.task import (
    DataError,
    TaskData,
    dataset_labels,
    default_root,
    list_tasks,
    load_task,
    register_task,
    subsample_per_class,
    task_options,
    validate_task,
)

__all__ = [
    "DataError",
    "TaskData",
    "dataset_labels",
    "default_root",
    "list_tasks",
    "load_task",
    "register_task",
    "subsample_per_class",
    "task_options",
    "validate_task",
]
