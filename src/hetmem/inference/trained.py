"""``load_trained``: a model trained by ``hetmem train``, ready to predict, without its data set."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from hetmem.backbones.spec import InputSpec
from hetmem.errors import CheckpointError
from hetmem.inputs import as_float
from hetmem.train.loaders import EpochLoader

__all__ = ["Predictions", "TrainedModel", "load_trained"]

log = logging.getLogger(__name__)


class Predictions(NamedTuple):
    """Per-row outputs, in the order of the inputs."""

    labels: Tensor  # (N,) long: the predicted class of each row
    probabilities: Tensor  # (N, C): softmax of the logits
    logits: Tensor  # (N, C)


def _as_rows(inputs: Any, spec: InputSpec, like: Tensor) -> Tensor:
    """(N, *spec.shape) float rows from a tensor or array of rows, flattened rows, or one sample."""
    if not isinstance(inputs, (Tensor, np.ndarray)):
        inputs = np.asarray(inputs)
    x = as_float(inputs, like, "predict", "inputs")
    shape = tuple(spec.shape)
    if tuple(x.shape) == shape:
        x = x.unsqueeze(0)  # one sample
    elif x.dim() == 2 and x.shape[1] == spec.numel and len(shape) > 1:
        x = x.reshape(-1, *shape)  # (N, numel) flattened rows, e.g. CSV
    if tuple(x.shape[1:]) != shape or x.shape[0] == 0:
        flat = f" or flattened rows (N, {spec.numel})" if len(shape) > 1 else ""
        raise ValueError(f"predict: inputs have shape {tuple(x.shape)}; this model takes (N, {', '.join(map(str, shape))}){flat}, N >= 1")
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"predict: inputs contain {bad} NaN or Inf values")
    return x


@dataclass
class TrainedModel:
    """A trained HMA classifier in eval mode, with what it needs to predict.

    The eval context is part of the model: with ``eval_context == "batch"`` (the paper's SMA)
    each row attends over the other rows of its evaluation batch, so :meth:`predict` mixes the
    rows into batches of ``batch_size`` in the fixed order ``hetmem evaluate`` uses (the same
    rows give the same predictions as ``evaluate`` scores); with ``"single"`` a prediction
    depends on its own row and the memory only.

    Attributes:
        model: the HMAClassifier (queue, slots and momentum encoder loaded), in eval mode.
        config: the run's TrainConfig (with the overrides applied).
        input_spec: what the backbone takes; num_classes, class_names: the task's.
        batch_size: rows per evaluation batch; checkpoint: the file it came from.
    """

    model: nn.Module
    config: Any
    input_spec: InputSpec
    num_classes: int
    class_names: list[str] | None
    batch_size: int
    checkpoint: Path

    @property
    def eval_context(self) -> str:
        """``"batch"`` or ``"single"``: what one prediction sees (the class docstring says more)."""
        return self.model.head.context()

    def describe(self) -> str:
        """One line: the model and its evaluation context."""
        ctx = (
            f"eval_context 'batch': each row attends over its evaluation batch ({self.batch_size} rows, evaluate's fixed mix)"
            if self.eval_context == "batch"
            else "eval_context 'single': each prediction depends on its own row and the memory only"
        )
        return f"{self.config.task} / {self.config.backbone} / {self.config.variant}, {self.num_classes} classes; {ctx}"

    def _dataset(self, inputs: Any) -> Any:
        if self.input_spec.kind == "graph":
            rows = inputs.to_data_list() if hasattr(inputs, "to_data_list") else list(inputs)
            if not rows or not all(hasattr(r, "edge_index") for r in rows):
                raise ValueError("predict: a graph model takes a non-empty list (or Batch) of torch_geometric Data")
            return rows
        x = _as_rows(inputs, self.input_spec, self.model.head.fc.weight.detach().cpu())
        return TensorDataset(x, torch.zeros(len(x), dtype=torch.long))

    @torch.inference_mode()
    def predict(self, inputs: Any, *, batch_size: int | None = None) -> Predictions:
        """Predicts every row of ``inputs``.

        Args:
            inputs: tensor tasks: a tensor, numpy array or nested list of rows (N, *input_spec.shape),
                flattened rows (N, prod(shape)) or one sample; any floating dtype (cast). Inputs
                are what the task's loader gives (preprocessed, e.g. scaled pixels). Graph
                tasks: a list of torch_geometric ``Data`` or a ``Batch``.
            batch_size: rows per evaluation batch (default: the run's); only the ``"batch"``
                context depends on it.

        Returns:
            :class:`Predictions` on the CPU, rows in input order.

        Raises:
            ValueError: wrong shape or dtype, NaN/Inf, an empty input.
        """
        dataset = self._dataset(inputs)
        loader = EpochLoader(dataset, batch_size or self.batch_size, shuffle=False, graph=self.input_spec.kind == "graph")
        device = self.model.head.fc.weight.device
        self.model.eval()
        outputs = []
        for batch in loader:
            x = batch.to(device) if loader.graph else batch[0].to(device)
            outputs.append(self.model(x).float().cpu())  # (b, C)
        logits = torch.empty(len(dataset), self.num_classes)
        logits[loader.order(0)] = torch.cat(outputs)  # back to input order
        return Predictions(logits.argmax(1), logits.softmax(1), logits)


def load_trained(
    checkpoint: str | Path,
    *,
    eval_context: str | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
) -> TrainedModel:
    """Loads a model written by ``hetmem train``, in eval mode, ready to :meth:`~TrainedModel.predict`.

    Needs the ``train`` extra (the checkpoint's config is a pydantic model), not the task's data
    (checkpoints written before hetmem 0.1.0's inference API load the task once to learn the
    input shape; ``data_root`` says where).

    Args:
        checkpoint: a ``.ckpt`` from ``hetmem train``, or a run/seed directory (its best.ckpt).
        eval_context: ``"batch"`` or ``"single"``, overriding the run's HMA ``eval_context``.
        batch_size: rows per evaluation batch (default: the run's evaluation batch size).
        device: where the model runs.

    Example:
        >>> trained = hetmem.load_trained("runs/digits/mlp-hma")  # doctest: +SKIP
        >>> trained.eval_context, trained.predict(x).labels  # doctest: +SKIP
    """
    from hetmem.train.runner import _is_sequence, _load_task, read_trained, restore_model

    overrides = {"hma": {"eval_context": eval_context}} if eval_context is not None else None
    path, state, cfg, seed = read_trained(checkpoint, overrides=overrides)
    if _is_sequence(cfg):
        raise CheckpointError(f"checkpoint {str(path)!r} is a {cfg.task} sequence model ({cfg.backbone}); load_trained and "
                              "hetmem predict take classifiers: continue text with hetmem generate, score it with hetmem evaluate")
    meta = state["hetmem"]
    if "input_spec" in meta:
        spec = InputSpec(**{**meta["input_spec"], "shape": tuple(meta["input_spec"]["shape"])})
        num_classes, class_names = meta["num_classes"], meta.get("class_names")
    else:
        task = _load_task(cfg, seed, data_root)
        spec, num_classes, class_names = task.input_spec, task.num_classes, task.class_names
    model = restore_model(state, cfg, spec, num_classes, path).to(device)
    trained = TrainedModel(model, cfg, spec, num_classes, class_names, batch_size or cfg.eval_batch_size or cfg.batch_size, path)
    log.info("loaded %s: %s", path, trained.describe())
    return trained
