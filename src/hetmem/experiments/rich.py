"""Rich-features grids (thesis ch. 2, spec §4): Table 2.4 (E1), Inverse Colored MNIST (E2), Cat_n vs Bonsai-cf (E3).

Every cell trains all its seeds at once as the members of one ensemble
(:class:`~hetmem.models.rich.members.MemberMLP`), full-batch, on the device given (CPU or CUDA;
nothing is hard-coded). Each seed keeps its own data (IRM and RFC redraw the data per restart:
``split_seed = seed``) and its own initialisations, and adds one row to the results store with
its final metrics (the honest protocol: the final model of a fixed budget) and its test curve at
the steps the thesis evaluated (Table A.12), from which the report takes the step the thesis
would have picked by looking at the test set, labelled so.

No hyper-parameter is searched here: lambda, the anneal, L2, the learning rate and the step
budgets are fixed per method in :data:`PENALTY`, :data:`STRIDE` and :class:`RichScale`, from RFC's
scripts (``scripts/coloredmnist/{coloredmnist_rfc,coloredmnist_anneal,inversecoloredmnist_rfc}.sh``)
and the thesis's app. A.9 (see each constant).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from hetmem.models.rich.bonsai import Bonsai, BonsaiConfig, discover_and_synthesize
from hetmem.models.rich.members import MemberHead, MemberMLP
from hetmem.train.env_objectives import create_objective
from hetmem.train.fullbatch import EnvData, fit_full_batch, member_accuracy

__all__ = ["RichScale", "SCALES", "PENALTY", "STRIDE", "DATASETS", "run_rich", "rich_cells", "RICH_EXPERIMENTS"]

log = logging.getLogger(__name__)

METHODS = ("erm", "irmv1", "vrex", "fishr", "sd", "iga", "clove")  # Table 2.4's rows
INITS = ("rand", "erm", "bonsai", "bonsai-cf")  # Table 2.4's columns
CAT_SIZES = (1, 2, 5, 10)

# lambda per method: the middle value of RFC's search arrays, not searched here. Colored MNIST:
# {1e3, 5e3, 1e4, 5e4, 1e5} (coloredmnist_rfc.sh, coloredmnist_anneal.sh; 1e4 is also IRM's main.py
# default), SD {10, 50, 100, 500, 1000}; Inverse: SD {0.05, 0.1, 0.5, 1, 5}, CLOvE 10 x {0.1..10} (thesis Table A.11).
PENALTY = {
    "cmnist": {"erm": 0.0, "irmv1": 1e4, "vrex": 1e4, "fishr": 1e4, "iga": 1e4, "clove": 1e4, "sd": 100.0},
    "inverse": {"erm": 0.0, "irmv1": 1e4, "vrex": 1e4, "fishr": 1e4, "iga": 1e4, "clove": 10.0, "sd": 0.5},
}
ERM_INIT_ANNEAL = 100  # ERM init = lambda 1 for this many steps first: IRM main.py's and RFC run_exp.py's default
# Table A.12: the thesis evaluated steps i x stride, i = 1..24, per method and initialisation; the budget
# (the honest protocol's final model) is 24 x stride. Inverse Bonsai-cf: 25 x 80 = 2,000 steps (IRMv1
# 25 x 400 = 10,000), inversecoloredmnist_rfc.sh's 2001 / 10001.
STRIDE = {
    "rand": {"clove": 30, "*": 20},
    "erm": {"clove": 30, "*": 20},
    "bonsai": {"irmv1": 2, "vrex": 2, "erm": 2, "*": 1},
    "bonsai-cf": {"irmv1": 125, "*": 20},
    "inverse-cf": {"irmv1": 400, "*": 80},
    "oracle": {"*": 20},
}
EVALS = {"inverse-cf": 25, "*": 24}


def stride_of(init: str, method: str) -> int:
    table = STRIDE[init]
    return table.get(method, table["*"])


@dataclass(frozen=True)
class RichScale:
    """How big a grid runs: the network width, the training digits, Bonsai's stopping, the steps.

    ``step_scale`` multiplies every budget and stride (1 except for ``tiny``, a pipeline check)."""

    name: str
    hidden_dim: int = 390
    train_digits: int | None = None  # None: all 50,000 (IRM); else the first N shuffled digits
    stop: str = "fixed"  # Bonsai's discovery rounds: the code's fixed steps, or worst-group early stopping
    step_scale: float = 1.0
    cat_sizes: tuple[int, ...] = CAT_SIZES
    lr: float = 5e-4  # Adam, every phase (RFC, thesis A.9)

    def steps(self, n: int) -> int:
        return max(1, int(round(n * self.step_scale)))


SCALES = {
    "irm": RichScale("irm"),  # the thesis's scale: 390 wide, 2 x 25,000 digits, RFC's fixed round steps
    "cpu": RichScale("cpu", hidden_dim=64, train_digits=6_000, stop="worst-group", cat_sizes=(1, 2, 5)),
    "tiny": RichScale("tiny", hidden_dim=16, train_digits=None, stop="fixed", step_scale=0.01, cat_sizes=(1, 2)),
}

DATASETS = {  # colored-mnist scale: irm options and Bonsai's recipe per data set
    "cmnist": {"options": {"p1": 0.2, "p2": 0.1, "label_noise": 0.25}, "l2": 0.0011,
               "bonsai": {"round_steps": (51, 501), "synthesis_steps": 501}},
    "oracle": {"options": {"p1": 0.5, "p2": 0.5, "label_noise": 0.25}, "l2": 0.0011, "bonsai": None},  # RFC's coloredmnist025gray
    "inverse": {"options": {"p1": 0.2, "p2": 0.25, "label_noise": 0.1}, "l2": 1e-4,
                "bonsai": {"round_steps": (151, 401), "synthesis_steps": 501}},
}
WORST_OF = ("reversed", "flip0.1", "flip0.5")


# ----- cells ------------------------------------------------------------------------------------
def rich_cells(study: str, tiny: bool, cat_sizes: Sequence[int] = CAT_SIZES) -> list[dict[str, Any]]:
    """The cell params of E1 / E2 / E3 (``tiny``: two cells; ``cat_sizes``: the n of Cat_n)."""
    if study == "e1":
        cells = [{"method": "erm", "init": "oracle"}]
        cells += [{"method": m, "init": i} for m in METHODS for i in INITS if not (m == "erm" and i == "erm")]
    elif study == "e2":
        cells = [{"method": "erm", "init": "rand"}] + [{"method": m, "init": "bonsai-cf"} for m in METHODS]
    elif study == "h1":
        from hetmem.experiments.rich_h1 import h1_cells

        return h1_cells(tiny)
    elif study == "e3":
        cells = [{"features": f"cat{n}", "head": h} for n in cat_sizes for h in ("erm", "vrex")]
        cells += [{"features": "bonsai", "head": h} for h in ("erm", "vrex")]
    else:
        raise ValueError(f"unknown rich study {study!r}")
    return [cells[0], cells[-1]] if tiny else cells


# ----- data ---------------------------------------------------------------------------------------
def _load(dataset: str, seeds: Sequence[int], scale: RichScale, device: torch.device) -> tuple[EnvData, dict[str, tuple]]:
    """Each seed's colored-mnist (scale irm, split_seed = seed) as member-stacked tensors on ``device``."""
    from hetmem.data import load_task
    from hetmem.data.task import default_root

    per_seed = [load_task("colored-mnist", root=default_root(), scale="irm", split_seed=s, irm_train_digits=scale.train_digits,
                          **DATASETS[dataset]["options"]) for s in seeds]
    envs_x, envs_y = [], []
    for e in range(2):
        xs, ys = [], []
        for task in per_seed:
            x, y = task.train.tensors
            rows = torch.from_numpy(task.train_envs == e)
            xs.append(x[rows].flatten(1))
            ys.append(y[rows])
        n = min(len(y) for y in ys)
        envs_x.append(torch.stack([x[:n] for x in xs]).to(device))  # (M, N_e, D)
        envs_y.append(torch.stack([y[:n] for y in ys]).to(device))
    tests = {name: (torch.stack([t.tests[name].tensors[0].flatten(1) for t in per_seed]).to(device),
                    torch.stack([t.tests[name].tensors[1] for t in per_seed]).to(device)) for name in per_seed[0].tests}
    return EnvData(envs_x, envs_y), tests


def _evaluator(tests: dict[str, tuple], train: EnvData | None = None):
    def evaluate(model) -> dict[str, torch.Tensor]:
        out = {name: member_accuracy(model, x, y) for name, (x, y) in tests.items()}
        out["worst"] = torch.stack([out[n] for n in WORST_OF if n in out]).min(0).values
        return out

    return evaluate


class _Context:
    """Data, Bonsai and Cat members of one grid call, built once and shared by its cells."""

    cache: dict[tuple, Any] = {}  # across experiments of one process (E1 then E3 reuse the same Bonsai)

    def __init__(self, seeds: Sequence[int], scale: RichScale, device: torch.device) -> None:
        self.seeds, self.scale, self.device = list(seeds), scale, device

    def _get(self, key: tuple, build):
        full = (*key, tuple(self.seeds), self.scale, str(self.device))
        if full not in self.cache:
            start = time.perf_counter()
            self.cache[full] = (build(), time.perf_counter() - start)
        return self.cache[full]

    def data(self, dataset: str):
        return self._get(("data", dataset), lambda: _load(dataset, self.seeds, self.scale, self.device))[0]

    def bonsai(self, dataset: str) -> tuple[Bonsai, float]:
        def build() -> Bonsai:
            train, _ = self.data(dataset)
            x = torch.cat(train.x, dim=1)  # (M, N, D): the training union
            y = torch.cat(train.y, dim=1)
            recipe = DATASETS[dataset]["bonsai"]
            cfg = BonsaiConfig(round_steps=tuple(self.scale.steps(s) for s in recipe["round_steps"]),
                               synthesis_steps=self.scale.steps(recipe["synthesis_steps"]), lr=self.scale.lr,
                               l2=DATASETS[dataset]["l2"], hidden_dim=self.scale.hidden_dim, stop=self.scale.stop,
                               stop_every=max(1, self.scale.steps(10)))
            return discover_and_synthesize(x, y, self.seeds, cfg)

        return self._get(("bonsai", dataset), build)

    def cat_members(self, dataset: str) -> tuple[list[MemberMLP], float]:
        """max(cat_sizes) ERM MLPs per seed, each from its own initialisation (Cat's components are trained separately)."""
        def build() -> list[MemberMLP]:
            train, _ = self.data(dataset)
            nets = []
            for j in range(max(self.scale.cat_sizes)):
                net = _fresh(self.seeds, train, self.scale, stream=300 + j)
                fit_full_batch(net, create_objective("erm", num_envs=2), train, steps=self.scale.steps(480), lr=self.scale.lr,
                               l2=DATASETS[dataset]["l2"])
                nets.append(net)
            return nets

        return self._get(("cat", dataset), build)

    def oracle_net(self, dataset: str) -> MemberMLP:
        """An ERM MLP per seed trained on the colour-free environments (p = 0.5), 480 steps."""
        def build() -> MemberMLP:
            train, _ = self.data("oracle")
            net = _fresh(self.seeds, train, self.scale, stream=400)
            fit_full_batch(net, create_objective("erm", num_envs=2), train, steps=self.scale.steps(480), lr=self.scale.lr,
                           l2=DATASETS[dataset]["l2"])
            return net

        return self._get(("oracle-net", dataset), build)[0]


def _fresh(seeds: Sequence[int], train: EnvData, scale: RichScale, stream: int) -> MemberMLP:
    return MemberMLP(seeds, in_features=train.x[0].shape[-1], hidden_dim=scale.hidden_dim, stream=stream).to(train.x[0].device)


def _head_from(weight: torch.Tensor, bias: torch.Tensor, seeds: Sequence[int]) -> MemberHead:
    head = MemberHead(seeds, weight.shape[1])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head.to(weight.device)


def _frozen(features, train: EnvData, tests: dict[str, tuple]) -> tuple[EnvData, dict[str, tuple]]:
    """Train environments and tests as frozen features (M, N, H)."""
    with torch.no_grad():
        return (EnvData([features(x) for x in train.x], train.y),
                {name: (features(x), y) for name, (x, y) in tests.items()})


# ----- one cell ------------------------------------------------------------------------------------
def _fit_method(ctx: _Context, dataset: str, method: str, init: str) -> tuple[dict[str, Any], Any, Any]:
    """Trains ``method`` from ``init`` for every seed; returns (hparams, curve, final metrics per member)."""
    scale = ctx.scale
    train, tests = ctx.data("oracle" if init == "oracle" else dataset)
    if init == "oracle":
        _, tests = ctx.data(dataset)  # trained on colour-free environments, tested on the real ones
    kind = "inverse-cf" if (dataset == "inverse" and init == "bonsai-cf") else init
    stride = scale.steps(stride_of(kind, method))
    evals = EVALS.get(kind, EVALS["*"])
    budget = stride * evals
    lam = PENALTY["inverse" if dataset == "inverse" else "cmnist"][method]
    anneal = ERM_INIT_ANNEAL if init == "erm" else 0
    anneal = scale.steps(anneal) if anneal else 0
    l2 = DATASETS[dataset]["l2"]
    train_what, evaluate_tests = "all", tests
    if init in ("rand", "erm", "oracle"):
        model = _fresh(ctx.seeds, train, scale, stream=200 + METHODS.index(method))
    else:
        bonsai, _ = ctx.bonsai(dataset)
        model = bonsai.initialization()
        if init == "bonsai-cf":
            train, evaluate_tests = _frozen(bonsai.features, train, tests)
            model = _head_from(model.head.weight, model.head.bias, ctx.seeds)
            train_what = "head"
    objective = create_objective(method, penalty_weight=lam, anneal_steps=anneal, num_envs=2, member_shape=(len(ctx.seeds),))
    curve = fit_full_batch(model, objective, train, steps=budget, lr=scale.lr, l2=l2, train=train_what,
                           evaluate=_evaluator(evaluate_tests), eval_at=range(0, budget + 1, stride), seed=ctx.seeds[0])
    with torch.no_grad():
        train_acc = torch.stack([member_accuracy(model, x, y) for x, y in zip(train.x, train.y)]).mean(0)
    hparams = {"penalty_weight": lam, "anneal_steps": anneal, "l2": l2, "lr": scale.lr, "steps": budget, "eval_stride": stride,
               "trained": train_what, "objective": repr(objective)}
    return hparams, curve, {"train": train_acc}


def frozen_representation(ctx: _Context, dataset: str, name: str):
    """(features(x) -> (M, N, H), head weight (M, H, 1), head bias (M, 1)) of a frozen representation:
    ``bonsai`` (Bonsai-cf, head = the mean of the synthesis heads), ``catN`` (the first N of each seed's
    separately trained ERM MLPs, concatenated, head [w_1; ...; w_N] / N: the two-stage init of
    ``hetmem.models.rich.cat.concat_heads``), ``erm`` (= cat1), ``oracle`` (an ERM MLP trained on the
    colour-free environments)."""
    if name == "bonsai":
        bonsai, _ = ctx.bonsai(dataset)
        init = bonsai.initialization()
        return bonsai.features, init.head.weight.detach(), init.head.bias.detach()
    if name == "oracle":
        net = ctx.oracle_net(dataset)
        return net.features, net.head.weight.detach(), net.head.bias.detach()
    n = 1 if name == "erm" else int(name.removeprefix("cat"))
    nets, _ = ctx.cat_members(dataset)
    if n > len(nets):
        raise ValueError(f"Cat_{n} needs {n} networks per seed; the {ctx.scale.name} scale trains {len(nets)}")
    chosen = nets[:n]
    weight = torch.cat([net.head.weight.detach() for net in chosen], dim=1) / n  # (M, n H, 1)
    bias = torch.stack([net.head.bias.detach() for net in chosen]).mean(0)
    return (lambda x: torch.cat([net.features(x) for net in chosen], dim=-1)), weight, bias


def _fit_cat(ctx: _Context, dataset: str, features: str, head: str) -> tuple[dict[str, Any], Any, Any]:
    """A linear head (ERM or vREx) on frozen features (:func:`frozen_representation`), started at the
    representation's own head, trained for Bonsai-cf's budget."""
    scale = ctx.scale
    train, tests = ctx.data(dataset)
    feature_fn, weight, bias = frozen_representation(ctx, dataset, features)
    ftrain, ftests = _frozen(feature_fn, train, tests)
    model = _head_from(weight, bias, ctx.seeds)
    stride = scale.steps(stride_of("bonsai-cf", head))
    budget = stride * EVALS["*"]
    lam = PENALTY["cmnist"][head]
    objective = create_objective(head, penalty_weight=lam, num_envs=2)
    curve = fit_full_batch(model, objective, ftrain, steps=budget, lr=scale.lr, l2=DATASETS[dataset]["l2"], train="head",
                           evaluate=_evaluator(ftests), eval_at=range(0, budget + 1, stride), seed=ctx.seeds[0])
    with torch.no_grad():
        train_acc = torch.stack([member_accuracy(model, x, y) for x, y in zip(ftrain.x, ftrain.y)]).mean(0)
    hparams = {"penalty_weight": lam, "l2": DATASETS[dataset]["l2"], "lr": scale.lr, "steps": budget, "eval_stride": stride,
               "feature_dim": int(weight.shape[1])}
    return hparams, curve, {"train": train_acc}


# ----- the grid runner ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RichSpec:
    study: str  # e1 | e2 | e3
    scale: str  # irm | cpu


RICH_EXPERIMENTS: dict[str, RichSpec] = {
    "rich-e1": RichSpec("e1", "irm"), "rich-e2": RichSpec("e2", "irm"), "rich-e3": RichSpec("e3", "irm"),
    "rich-h1": RichSpec("h1", "irm"),
    "rich-e1-cpu": RichSpec("e1", "cpu"), "rich-e2-cpu": RichSpec("e2", "cpu"), "rich-e3-cpu": RichSpec("e3", "cpu"),
    "rich-h1-cpu": RichSpec("h1", "cpu"),
}


_IRM_SCALE = ("colored-mnist scale: irm (2 x 25,000 training digits, 4 test environments of 10,000), IRM's MLP 390 wide, "
              "full-batch Adam 5e-4, 5 seeds trained at once (each its own data draw, split_seed = seed)")
_CPU_SCALE = ("REDUCED for a CPU: colored-mnist scale: irm on the first 6,000 shuffled training digits (2 x 3,000; the "
              "same 10,000-digit test environments), the MLP 64 wide instead of 390, seeds 0-1, Bonsai's rounds early-stopped "
              "on worst-group validation (10% held out); Cat_n for n = 1, 2, 5; every step budget as at full scale")
RICH_TEXT = {  # study -> (title, question, columns)
    "e1": ("Table 2.4: invariant-learning methods x initialisation on Colored MNIST",
           "Do rich (Bonsai) initialisations and frozen Bonsai representations help IRMv1, vREx, Fishr, SD, IGA and CLOvE "
           "on Colored MNIST at IRM's scale, against random and ERM initialisations (thesis Table 2.4)?", ("init",)),
    "e2": ("Table 2.5: Inverse Colored MNIST on a frozen Bonsai representation",
           "When the robust feature (shape, 90%) is more predictive than the spurious one (colour, 75-80%), do the methods on "
           "frozen Bonsai features still do well, and does ERM (thesis Table 2.5)?", ("init",)),
    "e3": ("Cat_n (frozen concatenation of n ERM networks) vs Bonsai-cf on Colored MNIST",
           "Does concatenating n independently trained ERM networks give a representation on which an ERM or vREx head "
           "generalises out of distribution, and how does it compare with a frozen Bonsai representation (spec E3)?", ("head",)),
    "h1": ("H1: a memory (HMA) head on frozen ERM, Cat5, Bonsai and oracle features, and k reversed examples in its queue",
           "Does an HMA head on richer frozen features generalise better, and does writing k labelled reversed-environment "
           "examples into its queue at inference (no gradient step) help more on richer features (spec §6, H1)?", ("head",)),
}


def rich_scale_text(name: str) -> str:
    spec = RICH_EXPERIMENTS[name]
    return _IRM_SCALE if spec.scale == "irm" else _CPU_SCALE


def rich_seeds(name: str) -> tuple[int, ...]:
    return (0, 1, 2, 3, 4) if RICH_EXPERIMENTS[name].scale == "irm" else (0, 1)


def _device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        from hetmem.errors import ConfigError

        raise ConfigError(f"device {device!r} was asked for, but torch sees no CUDA device here")
    return torch.device(device)


def run_rich(name: str, todo: list[Any], store: Any, *, tiny: bool, device: str | None, env: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs the pending runs ``todo`` (cell x seed) of rich experiment ``name``, every seed of a cell at once;
    appends one row per run to ``store`` and returns the rows."""
    spec = RICH_EXPERIMENTS[name]
    scale = SCALES["tiny" if tiny else spec.scale]
    dev = _device(device)
    matmul = "fp32"
    if dev.type == "cuda":  # TF32 tensor cores for the matrix products (10-bit mantissa): the grids fit a short GPU session
        torch.backends.cuda.matmul.allow_tf32 = True
        matmul = "tf32"
    seeds = sorted({run.seed for run in todo})
    ctx = _Context(seeds, scale, dev)
    dataset = "inverse" if spec.study == "e2" else "cmnist"
    added = []
    cells: dict[str, list[Any]] = {}
    for run in todo:
        cells.setdefault(str(sorted(run.params.items())), []).append(run)
    for runs in cells.values():
        params = runs[0].params
        start = time.perf_counter()
        if spec.study in ("e3", "h1"):
            from hetmem.experiments.rich_h1 import fit_h1

            hparams, curve, extra = fit_h1(ctx, dataset, params["features"], params["head"])
            upstream = {"bonsai": "bonsai", "oracle": None}.get(params["features"], "cat")
        else:
            hparams, curve, extra = _fit_method(ctx, dataset, params["method"], params["init"])
            upstream = "bonsai" if params["init"].startswith("bonsai") else None
        cell_wall = time.perf_counter() - start
        up_wall = ctx.bonsai(dataset)[1] if upstream == "bonsai" else ctx.cat_members(dataset)[1] if upstream == "cat" else 0.0
        bonsai_summary = ctx.bonsai(dataset)[0].summary() if upstream == "bonsai" else None
        for run in runs:
            m = seeds.index(run.seed)
            member_curve = curve.member(m)
            row = {
                "key": run.key, "experiment": name, "cell": run.params, "seed": run.seed, "tiny": tiny,
                "metrics": {"final": {k: v[-1] for k, v in member_curve.items()}, "train": float(extra["train"][m])},
                "curve": {"steps": curve.steps, **member_curve},
                "hparams": hparams,
                "upstream": {k: v[m] for k, v in bonsai_summary.items()} if bonsai_summary else None,
                "config": {"steps": hparams["steps"], "dataset": dataset, "scale": asdict(scale), "device": str(dev), "matmul": matmul,
                           "members": len(seeds), "data_options": DATASETS[dataset]["options"]},
                "wall_s": cell_wall / len(seeds), "cell_wall_s": cell_wall, "upstream_wall_s": up_wall, **env,
            }
            store.add(row)
            added.append(row)
        log.info("%s %s: worst %s (%.1f s)", name, params, [round(v, 3) for v in curve.metrics["worst"][-1]], cell_wall)
    return added
