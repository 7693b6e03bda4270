"""Colored MNIST at IRM's own scale (``colored-mnist`` with ``scale: irm``), on the full MNIST.

IRM's ``code/colored_mnist/main.py`` and RFC's ``coloredmnist/mydatasets.py``, step by step:

- the 50,000 training digits are shuffled once (here by ``split_seed``);
- training environment 1 is every other shuffled digit (``[::2]``), with colour flip ``p1``;
  environment 2 the others (``[1::2]``), with ``p2``: 25,000 each;
- every environment draws its own label noise (label = digit < 5, flipped w.p. ``label_noise``)
  and its own colours (colour = label flipped w.p. the environment's p), then zeroes the other
  colour's channel of the 14x14 (``[::2, ::2]``) image;
- the test environments are the 10,000 held-out digits (official training images 50,000-59,999)
  with colour flips ``test_p`` ("reversed", 0.9), 0.1 and 0.5, each with its own draws (RFC's
  three test environments), and "gray": the reversed environment's digits and labels with
  both channels kept.

The RFC metric is the worst accuracy over the flip-0.9 / 0.1 / 0.5 environments
(``info["worst_of"]``; the runner reports it as ``test_worst``). Validation, which IRM does
not have, is the official 10,000 test digits coloured like training (half with ``p1``, half
with ``p2``): the training distribution, never an out-of-distribution peek.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetmem.backbones.spec import InputSpec
from hetmem.data.mnist_full import WHEEL, full_mnist
from hetmem.data.splits import tensor_dataset
from hetmem.data.task import TaskData, subsample_per_class

__all__ = ["TEST_FLIPS", "build_irm_colored_mnist", "colored_environment"]

TEST_FLIPS = {"reversed": None, "flip0.1": 0.1, "flip0.5": 0.5}  # None: test_p (0.9 by default)


def colored_environment(
    images: np.ndarray, digits: np.ndarray, rng: np.random.Generator, *, label_noise: float, color_flip: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """One IRM environment: fresh label-noise and colour draws for every digit.

    Args:
        images: uint8 digits (N, S, S) in 0-255.
        digits: classes 0-9, (N,).
        rng: the generator of this environment's draws.
        label_noise: probability of flipping ``digit < 5``.
        color_flip: probability that the colour disagrees with the label; None keeps both
            channels (gray) but still draws the labels.

    Returns:
        ``(x float32 (N, 2, S, S) in [0, 1], labels int64 (N,))``.
    """
    from hetmem.data.images import colorize, irm_labels_and_colors

    label_u, color_u = rng.random((2, len(digits)))
    labels, colors = irm_labels_and_colors(digits, label_u, color_u, label_noise=label_noise, color_flip=color_flip or 0.0)
    x = colorize(images.astype(np.float32) / 255.0, None if color_flip is None else colors)  # (N, 2, S, S)
    return x, labels


def build_irm_colored_mnist(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    image_size: int,
    p1: float,
    p2: float,
    test_p: float,
    label_noise: float,
    split_seed: int,
    download: bool,
) -> TaskData:
    """Colored MNIST, IRM protocol at full scale (see the module docstring).

    Returns:
        TaskData with ``train_envs`` (0 or 1 per training row), tests ``reversed``, ``flip0.1``,
        ``flip0.5``, ``gray``, and ``info["worst_of"]`` naming the RFC metric's environments.
    """
    data = full_mnist(root, download=download)
    size = (lambda a: a) if image_size == 28 else (lambda a: a[:, ::2, ::2])
    draws = np.random.default_rng(split_seed)
    order = draws.permutation(len(data["train"][1]))
    images, digits = size(data["train"][0])[order], data["train"][1][order]
    env_rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([split_seed, 1]).spawn(8)]

    xs, ys, envs = [], [], []
    for env, (part, p) in enumerate(((slice(0, None, 2), p1), (slice(1, None, 2), p2))):
        x, y = colored_environment(images[part], digits[part], env_rngs[env], label_noise=label_noise, color_flip=p)
        xs.append(x)
        ys.append(y)
        envs.append(np.full(len(y), env, dtype=np.int64))
    full_train = tensor_dataset(np.concatenate(xs), np.concatenate(ys))
    train_envs = np.concatenate(envs)
    train = subsample_per_class(full_train, per_class, seed)
    if per_class is not None:
        train_envs = train_envs[np.asarray(train.indices)]

    val_images, val_digits = size(data["test"][0]), data["test"][1]
    half = len(val_digits) // 2
    val_parts = [colored_environment(val_images[s], val_digits[s], env_rngs[2 + i], label_noise=label_noise, color_flip=p)
                 for i, (s, p) in enumerate(((slice(0, half), p1), (slice(half, None), p2)))]
    val = tensor_dataset(np.concatenate([v[0] for v in val_parts]), np.concatenate([v[1] for v in val_parts]))

    test_images, test_digits = size(data["val"][0]), data["val"][1]
    tests = {}
    for i, (name, flip) in enumerate(TEST_FLIPS.items()):
        x, y = colored_environment(test_images, test_digits, env_rngs[4 + i], label_noise=label_noise,
                                   color_flip=test_p if flip is None else flip)
        tests[name] = tensor_dataset(x, y)
        if name == "reversed":
            tests["gray"] = tensor_dataset(np.repeat(x.max(axis=1, keepdims=True), 2, axis=1), y)  # both channels: the digit
    n_env = [int((train_envs == e).sum()) for e in (0, 1)]
    info = {
        "source": f"the full MNIST from the PyPI wheel {WHEEL} (train 50,000 / held-out 10,000 / official test 10,000)",
        "protocol": (
            "IRM Colored MNIST at IRM's scale (code/colored_mnist/main.py, RFC coloredmnist/mydatasets.py): shuffle the "
            "50,000 training digits once, environments [::2] and [1::2]; every environment draws its own label noise and "
            "colours; tests on the 10,000 held-out digits with colour flips test_p, 0.1, 0.5, and gray"
        ),
        "scale": "irm",
        "split_seed": split_seed,
        "image_size": image_size,
        "label_noise": label_noise,
        "train_envs": {"env1": {"p": p1, "size": n_env[0]}, "env2": {"p": p2, "size": n_env[1]}},
        "val_envs": {"env1": {"p": p1, "size": half}, "env2": {"p": p2, "size": len(val_digits) - half}},
        "tests": {"reversed": f"colour flipped w.p. test_p={test_p}", "flip0.1": "colour flipped w.p. 0.1",
                  "flip0.5": "colour flipped w.p. 0.5", "gray": "the reversed environment's digits and labels, both channels"},
        "worst_of": ["reversed", "flip0.1", "flip0.5"],
        "split_sizes": {"train": len(full_train), "val": len(val), **{k: len(v) for k, v in tests.items()}},
        "per_class": per_class,
    }
    return TaskData(
        name="colored-mnist",
        num_classes=2,
        input_spec=InputSpec.image(2, image_size, image_size),
        train=train,
        val=val,
        tests=tests,
        metric="accuracy",
        class_names=["5-9", "0-4"],
        info=info,
        train_envs=train_envs,
    )
