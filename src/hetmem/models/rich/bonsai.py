"""Bonsai (thesis ch. 2.3; called RFC in its code): discovery rounds, then synthesis.

Discovery (Alg. 2 and RFC's ``coloredmnist_rfc.sh``): round 0 trains a fresh network with ERM
on the training union D (51 full-batch steps on Colored MNIST: short on purpose); it splits D into
A_1 (rows it gets right) and B_1 (the rest). Round k >= 1 trains a fresh network with robust ERM
(the largest group loss) over every group found so far (501 steps), and adds its own A_k, B_k.

Synthesis: the rounds' hard predictions are pseudo-labels; one fresh network with K linear heads
(one per round) learns them all, and the downstream head starts as the mean of the K heads
(weights and bias, RFC's ``run_exp_syn.py``). Downstream, the network is an initialisation
("Bonsai init") or a frozen representation ("Bonsai-cf").

Where the thesis and the code differ, ``form`` picks (the code's is the default):

- ``"code"``: A = rows on which all rounds agree (all right or all wrong); the synthesis set is
  resampled once with replacement, N/2 rows from A and N/2 from D \\ A; the loss is the mean of
  the heads' BCE.
- ``"thesis"``: A = the intersection of the A_k; the loss is sum_k [mean_A l + mean_{D \\ A} l].

``stop``: ``"fixed"`` trains every round for its steps (the code); ``"worst-group"`` holds out
``val_fraction`` of each member's rows and keeps each round at its best worst-group validation
accuracy (Alg. 1's early stopping; the spec's pilot needed it at small scale).

Shapes: rows x (M, N, D), labels (M, N), M = members (one per seed).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.models.rich.members import MemberMLP
from hetmem.train.env_objectives import create_objective
from hetmem.train.fullbatch import Curve, EnvData, fit_full_batch

__all__ = ["BonsaiConfig", "Bonsai", "copy_members", "discover_and_synthesize"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BonsaiConfig:
    """Bonsai's recipe; the defaults are RFC's Colored MNIST script (``coloredmnist_rfc.sh``)."""

    round_steps: tuple[int, ...] = (51, 501)  # round 0 (ERM on D), rounds 1.. (robust ERM over the groups); Inverse: (151, 401)
    synthesis_steps: int = 501
    lr: float = 5e-4  # Adam, every phase
    l2: float = 0.0011  # l2 * sum ||theta||^2, biases included (Inverse Colored MNIST: 1e-4)
    hidden_dim: int = 390
    form: str = "code"  # "code" or "thesis" (see the module docstring)
    stop: str = "fixed"  # "fixed" or "worst-group"
    val_fraction: float = 0.1  # rows held out for "worst-group" early stopping
    stop_every: int = 10  # steps between early-stopping evaluations

    def __post_init__(self) -> None:
        if len(self.round_steps) < 1 or any(s < 1 for s in self.round_steps):
            raise ValueError(f"BonsaiConfig: round_steps needs at least one round, each of >= 1 step; got {self.round_steps}")
        if self.synthesis_steps < 1:
            raise ValueError(f"BonsaiConfig: synthesis_steps must be >= 1, got {self.synthesis_steps}")
        if self.form not in ("code", "thesis") or self.stop not in ("fixed", "worst-group"):
            raise ValueError(f"BonsaiConfig: form must be 'code' or 'thesis' and stop 'fixed' or 'worst-group'; got {self.form!r}, {self.stop!r}")
        if not 0 < self.val_fraction < 1 or self.stop_every < 1:
            raise ValueError(f"BonsaiConfig: val_fraction must be in (0, 1) and stop_every >= 1; got {self.val_fraction}, {self.stop_every}")

    @property
    def rounds(self) -> int:
        return len(self.round_steps)


@dataclass
class Bonsai:
    """What Bonsai found for M members: the synthesis network and the rounds' verdicts."""

    network: MemberMLP  # the synthesis network, K heads
    correct: Tensor  # (K, M, N) bool: round k's prediction on row n is right
    predictions: Tensor  # (K, M, N) long: round k's hard predictions (the pseudo-labels)
    agree: Tensor  # (M, N) bool: the synthesis set A
    round_curves: list[Curve] = field(default_factory=list)
    synthesis_curve: Curve | None = None

    def initialization(self) -> MemberMLP:
        """A copy of the synthesis network with one binary head, the mean of the K heads (Bonsai init)."""
        net = self.network
        out = MemberMLP([0] * net.num_members, in_features=net.in_features, hidden_dim=net.hidden_dim, out=1)
        with torch.no_grad():
            for name in ("w1", "b1", "w2", "b2"):
                getattr(out, name).copy_(getattr(net, name))
            out.head.weight.copy_(net.head.weight.mean(-1, keepdim=True))  # (M, H, 1)
            out.head.bias.copy_(net.head.bias.mean(-1, keepdim=True))  # (M, 1)
        return out.to(net.w1.device)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """The frozen representation (Bonsai-cf) of rows x, (M, N, H)."""
        return self.network.features(x)

    def summary(self) -> dict[str, list[float]]:
        """Per member: each round's training accuracy, and the share of rows in A."""
        return {**{f"round{k}_train_acc": self.correct[k].float().mean(-1).tolist() for k in range(len(self.correct))},
                "agree_share": self.agree.float().mean(-1).tolist()}


def _holdout(members: int, n: int, fraction: float, seeds: Sequence[int], device: torch.device) -> Tensor:
    """(M, N) bool: the rows each member holds out for early stopping (fixed by its seed)."""
    rows = [torch.rand(n, generator=torch.Generator().manual_seed(int(s) + 77_777)) < fraction for s in seeds]
    return torch.stack(rows).to(device)


def _round(x: Tensor, y: Tensor, groups: list[Tensor], seeds: Sequence[int], k: int, steps: int, cfg: BonsaiConfig,
           held: Tensor | None, evaluate: Callable | None) -> tuple[MemberMLP, Curve]:
    """One discovery round: a fresh network, ERM (k = 0) or robust ERM over ``groups`` (each (M, N) bool)."""
    net = MemberMLP(seeds, in_features=x.shape[-1], hidden_dim=cfg.hidden_dim, stream=100 + k).to(x.device)
    masks = [g & ~held if held is not None else g for g in groups]
    data = EnvData([x] * len(masks), [y] * len(masks), [m.float() for m in masks])
    objective = create_objective("erm" if k == 0 else "rerm", num_envs=len(masks))
    eval_at: list[int] = []
    score: Callable | None = evaluate
    keep = None
    if held is not None:
        eval_at = list(range(0, steps + 1, cfg.stop_every)) + [steps]
        keep = "worst_group_val"

        def score(model: nn.Module) -> dict[str, Tensor]:
            with torch.no_grad():
                right = ((model(x) > 0).long() == y).float()  # (M, N)
                accs = torch.stack([(right * (g & held)).sum(-1) / (g & held).sum(-1).clamp_min(1) for g in groups])  # (G, M)
                out = {"worst_group_val": accs.min(0).values}
            return {**out, **(evaluate(model) if evaluate else {})}
    elif evaluate is not None:
        eval_at = [0, steps]
    curve = fit_full_batch(net, objective, data, steps=steps, lr=cfg.lr, l2=cfg.l2, evaluate=score, eval_at=eval_at, keep_best=keep)
    return net, curve


def _synthesis_rows(agree: Tensor, seeds: Sequence[int]) -> Tensor:
    """(M, N) row indices: N/2 drawn with replacement from A, N/2 from D \\ A (RFC's run_exp_syn.py)."""
    members, n = agree.shape
    out = []
    for m in range(members):
        g = torch.Generator().manual_seed(int(seeds[m]) + 99_991)
        a = torch.nonzero(agree[m].cpu()).flatten()
        b = torch.nonzero(~agree[m].cpu()).flatten()
        if len(b) == 0 or len(a) == 0:  # every round agrees everywhere (or nowhere): nothing to balance
            log.warning("bonsai: member %d has %d rows in A and %d outside; the synthesis uses D as is", m, len(a), len(b))
            out.append(torch.arange(n))
            continue
        half = n // 2
        out.append(torch.cat([a[torch.randint(len(a), (half,), generator=g)], b[torch.randint(len(b), (n - half,), generator=g)]]))
    return torch.stack(out).to(agree.device)


def _synthesize(x: Tensor, predictions: Tensor, agree: Tensor, seeds: Sequence[int], cfg: BonsaiConfig,
                evaluate: Callable | None) -> tuple[MemberMLP, Curve]:
    """One fresh network with K linear heads learns the K rounds' hard predictions."""
    K = predictions.shape[0]
    net = MemberMLP(seeds, in_features=x.shape[-1], hidden_dim=cfg.hidden_dim, out=K, stream=900).to(x.device)
    targets = predictions.permute(1, 2, 0).float()  # (M, N, K)
    if cfg.form == "code":
        rows = _synthesis_rows(agree, seeds)  # (M, N)
        xs = torch.gather(x.expand(len(seeds), *x.shape[-2:]) if x.ndim == 2 else x, 1, rows.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        ts = torch.gather(targets, 1, rows.unsqueeze(-1).expand(-1, -1, K))
        weights = None
    else:  # thesis: sum over heads of mean_A + mean_{D \ A}
        xs, ts = x, targets
        a = agree.float()
        weights = a / a.sum(-1, keepdim=True).clamp_min(1) + (1 - a) / (1 - a).sum(-1, keepdim=True).clamp_min(1)  # (M, N)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    curve = Curve()
    for t in range(cfg.synthesis_steps):
        z = net(xs)  # (M, N, K)
        per_row = F.binary_cross_entropy_with_logits(z, ts, reduction="none")  # (M, N, K)
        data = per_row.mean((-2, -1)) if weights is None else (per_row * weights.unsqueeze(-1)).sum(-2).sum(-1)
        l2 = sum(p.pow(2).flatten(1).sum(-1) for p in params)
        loss = (data + cfg.l2 * l2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        fit = ((net(x) > 0).long() == predictions.permute(1, 2, 0)).float().mean((1, 2))  # (M,): pseudo-label accuracy on D
    curve.add(cfg.synthesis_steps, {"pseudo_label_acc": fit, **(evaluate(net) if evaluate else {})})
    return net, curve


def discover_and_synthesize(
    x: Tensor,
    y: Tensor,
    seeds: Sequence[int],
    cfg: BonsaiConfig = BonsaiConfig(),
    *,
    evaluate: Callable[[nn.Module], dict[str, Tensor]] | None = None,
) -> Bonsai:
    """Runs Bonsai for M members (one per seed) on their training rows.

    Args:
        x: the training union of each member, (M, N, D) (the environments are dropped, as RFC's round 1 does).
        y: labels (M, N), 0/1.
        seeds: one per member; every round starts from a fresh initialisation of that seed.
        cfg: the recipe.
        evaluate: optional model -> {name: (M,)} measured after each round (information only).

    Returns:
        The synthesis network and the rounds' verdicts.
    """
    members, n = y.shape
    held = _holdout(members, n, cfg.val_fraction, seeds, x.device) if cfg.stop == "worst-group" else None
    everything = torch.ones_like(y, dtype=torch.bool)
    groups: list[Tensor] = []
    correct, predictions, curves = [], [], []
    for k, steps in enumerate(cfg.round_steps):
        net, curve = _round(x, y, [everything] if k == 0 else groups, seeds, k, steps, cfg, held, evaluate)
        with torch.no_grad():
            pred = torch.cat([(net(x[:, i : i + 20000]) > 0).long() for i in range(0, n, 20000)], dim=1)  # (M, N)
        right = pred == y
        correct.append(right)
        predictions.append(pred)
        groups += [right, ~right]
        curves.append(curve)
        log.info("bonsai round %d: training accuracy %s", k, [round(v, 3) for v in right.float().mean(-1).tolist()])
        del net
    correct_t, pred_t = torch.stack(correct), torch.stack(predictions)  # (K, M, N)
    agree = correct_t.all(0) | (~correct_t).all(0) if cfg.form == "code" else correct_t.all(0)
    net, syn_curve = _synthesize(x, pred_t, agree, seeds, cfg, evaluate)
    return Bonsai(net, correct_t, pred_t, agree, curves, syn_curve)


def copy_members(net: nn.Module) -> nn.Module:
    """A deep copy (fresh leaves, same values): downstream runs must not share the synthesis network."""
    return copy.deepcopy(net)

