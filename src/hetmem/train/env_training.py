"""``hetmem train`` with an objective over environments (``objective.name: vrex`` ...).

The training split becomes ``(x, y, environment)`` rows (the task's ``train_envs``), each
mini-batch is split by environment, and the objective of :mod:`hetmem.train.env_objectives`
turns the per-environment logits into the loss; Fishr reads the input of the classifier's final
linear layer through a forward hook. The anneal counts optimiser steps (``global_step``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from hetmem.errors import ConfigError
from hetmem.train.env_objectives import EnvBatch, EnvObjective, create_objective, l2_penalty

__all__ = ["check_objective", "with_envs", "ObjectiveLoss", "total_steps"]


def total_steps(cfg: Any, num_train: int) -> int:
    """Optimiser steps of a run: epochs x batches per epoch (the last, partial batch included)."""
    return cfg.epochs * max(1, math.ceil(num_train / cfg.batch_size))


def check_objective(cfg: Any, task: Any) -> None:
    """ConfigError (one line, before anything is written) when ``cfg.objective`` cannot train on ``task``:
    a task without environments, or an anneal that does not end before the run does."""
    o = cfg.objective
    if not o.active:
        return
    if o.name != "erm" and getattr(task, "num_envs", 0) < 1:
        raise ConfigError(f"objective {o.name!r} needs a task with training environments; {task.name!r} has none "
                          "(colored-mnist has two)")
    if o.name == "iga" and cfg.variant != "none":
        raise ConfigError(f"objective 'iga' differentiates parameter gradients again, which HMA's memory read (variant "
                          f"{cfg.variant!r}) does not support; use variant none")
    if cfg.devices > 1 and o.name != "erm":
        raise ConfigError(f"objective {o.name!r} trains in one process; got devices={cfg.devices}")
    steps = total_steps(cfg, len(task.train))
    if o.anneal_steps >= steps and o.penalty_weight != o.anneal_weight:
        raise ConfigError(f"config field 'objective.anneal_steps' ({o.anneal_steps}) is beyond the run: it has {steps} "
                          f"optimiser steps ({cfg.epochs} epochs x {math.ceil(len(task.train) / cfg.batch_size)} batches)")


def with_envs(dataset: Any, envs: Any) -> TensorDataset:
    """``dataset`` (a TensorDataset or a Subset of one) as a TensorDataset of (x, y, environment) rows."""
    from hetmem.train.loaders import _tensor_source

    source = _tensor_source(dataset)
    if source is None:
        raise ConfigError("objectives over environments need a tensor task (its rows as tensors)")
    tensors, index = source
    env = torch.as_tensor(envs, dtype=torch.long)
    if len(env) != len(index):
        raise ConfigError(f"the task gives {len(env)} environment ids for {len(index)} training rows")
    return TensorDataset(tensors[0][index], tensors[1][index], env)


class ObjectiveLoss:
    """The loss of one mini-batch: split by environment, then the objective.

    A plain object, not a module: the model's weights stay where the LightningModule keeps
    them, and checkpoints hold nothing of it (GroupDRO's weights restart after a resume).

    Args:
        model: an HMAClassifier (``model(x, y)`` gives logits; ``model.head.fc`` is its final layer).
        objective: from :func:`hetmem.train.env_objectives.create_objective`.
        l2: weight of RFC's explicit L2 term (sum of squared parameters, biases included).
    """

    def __init__(self, model: nn.Module, objective: EnvObjective, l2: float = 0.0) -> None:
        self.model = model
        self.objective = objective
        self.l2 = l2
        self._fc_input: Tensor | None = None
        if "features" in objective.needs:
            model.head.fc.register_forward_pre_hook(self._keep_input)

    def _keep_input(self, module: nn.Module, args: tuple[Tensor, ...]) -> None:
        self._fc_input = args[0]

    @classmethod
    def from_config(cls, model: nn.Module, cfg: Any, num_envs: int) -> ObjectiveLoss:
        o = cfg.objective
        objective = create_objective(o.name, penalty_weight=o.penalty_weight, anneal_steps=o.anneal_steps,
                                     anneal_weight=o.anneal_weight, risk=o.risk, num_envs=num_envs, **o.options)
        return cls(model, objective, o.l2)

    def __call__(self, x: Tensor, y: Tensor, env: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """Returns ``(loss, logits)`` for a batch ``x`` (B, ...), labels ``y`` (B,), environments ``env`` (B,)."""
        logits = self.model(x, y)  # (B, C); reads, then writes HMA's memory
        present = torch.unique(env).tolist()
        rows = [env == e for e in present]
        features = [self._fc_input[r] for r in rows] if "features" in self.objective.needs else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        batch = EnvBatch([logits[r] for r in rows], [y[r] for r in rows], features, params)
        groups = {"featurizer": [p for p in self.model.backbone.parameters() if p.requires_grad],
                  "head": [p for p in self.model.head.parameters() if p.requires_grad]}
        l2 = self.l2 * l2_penalty(groups, self.objective.l2_scope) if self.l2 else 0.0
        return self.objective(batch, step, l2), logits
