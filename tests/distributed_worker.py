"""Workers for tests/test_distributed.py: run as ``python distributed_worker.py CASE OUT_DIR``.

Each case spawns 2 gloo processes on CPU (and, for the equivalence case, a 1-process
reference) and writes what they computed to OUT_DIR for the test to compare.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from hetmem.distributed import concat_all_gather
from hetmem.models.hma import HMAClassifier, HMAConfig

N_CLASSES, IN, FEAT, B, STEPS = 3, 6, 12, 8, 4


class Backbone(nn.Module):
    feature_dim = FEAT

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(IN, FEAT), nn.Tanh())

    def forward_features(self, x):
        return self.net(x)


def data():
    g = torch.Generator().manual_seed(123)
    return torch.randn(STEPS, B, IN, generator=g), torch.randint(0, N_CLASSES, (STEPS, B), generator=g)


def model(global_batch: bool) -> HMAClassifier:
    torch.manual_seed(0)
    cfg = HMAConfig(num_classes=N_CLASSES, label_dim=4, queue_size=20, slots_per_class=2, num_heads=2, dropout=0.0,
                    momentum=0.5, global_batch=global_batch)
    return HMAClassifier(Backbone(), cfg)


def train(rank: int, world: int, global_batch: bool) -> tuple[HMAClassifier, list[float]]:
    """STEPS SGD steps on the fixed global batches; rank r takes its contiguous slice of each."""
    net = model(global_batch)
    ddp = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    xs, ys = data()
    share = B // world
    losses = []
    for x, y in zip(xs, ys):
        x, y = x[rank * share : (rank + 1) * share], y[rank * share : (rank + 1) * share]
        loss = nn.functional.cross_entropy(ddp(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mean = loss.detach().clone()
        if world > 1:
            dist.all_reduce(mean)
            mean /= world
        losses.append(float(mean))
    return net, losses


def worker(rank: int, world: int, case: str, out: str, port: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        if case == "gather":
            rows = torch.full((rank + 1, 2), float(rank))  # ranks hold 1 and 2 rows
            torch.save(concat_all_gather(rows), f"{out}/gather-{rank}.pt")
        else:
            net, losses = train(rank, world, global_batch=case == "global")
            state = {k: v for k, v in net.state_dict().items()}
            torch.save({"state": state, "losses": losses}, f"{out}/{case}-{rank}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    case, out, port = sys.argv[1], sys.argv[2], sys.argv[3]
    mp.spawn(worker, args=(2, case, out, port), nprocs=2, join=True)
    if case == "global":  # the single-process reference with the whole batch
        net, losses = train(0, 1, global_batch=True)
        torch.save({"state": net.state_dict(), "losses": losses}, f"{out}/single.pt")
