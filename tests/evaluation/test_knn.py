import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hetmem.evaluation.knn import extract_features, knn_accuracy, weighted_knn_predict, weighted_knn_scores


def blobs(n_per_class=30, num_classes=4, dim=8, seed=0, spread=0.1):
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(dim)[:num_classes] * 5
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    return centers[y] + spread * torch.randn(len(y), dim, generator=g), y


def test_separable_clusters_are_classified_exactly():
    xtr, ytr = blobs(seed=0)
    xte, yte = blobs(n_per_class=10, seed=1)
    pred = weighted_knn_predict(xtr, ytr, xte, num_classes=4)
    assert torch.equal(pred, yte)


def test_k_equal_one_is_the_nearest_neighbour_by_cosine():
    g = torch.Generator().manual_seed(2)
    xtr, ytr = torch.randn(50, 6, generator=g), torch.randint(0, 5, (50,), generator=g)
    xte = torch.randn(40, 6, generator=g)
    nearest = (F.normalize(xte, dim=1) @ F.normalize(xtr, dim=1).T).argmax(dim=1)
    assert torch.equal(weighted_knn_predict(xtr, ytr, xte, num_classes=5, k=1), ytr[nearest])


def test_temperature_trades_the_nearest_point_against_the_majority():
    # one close neighbour of class 0, two farther ones of class 1
    xtr = torch.tensor([[1.0, 0.1], [1.0, 0.6], [1.0, -0.6]])
    ytr = torch.tensor([0, 1, 1])
    xte = torch.tensor([[1.0, 0.0]])
    assert weighted_knn_predict(xtr, ytr, xte, num_classes=2, k=3, temperature=0.01).item() == 0  # sharp: nearest wins
    assert weighted_knn_predict(xtr, ytr, xte, num_classes=2, k=3, temperature=10.0).item() == 1  # flat: majority wins
    assert weighted_knn_predict(xtr, ytr, xte, num_classes=2, k=1, temperature=10.0).item() == 0


def test_scores_are_sums_of_exp_similarity_over_the_k_neighbours():
    g = torch.Generator().manual_seed(3)
    xtr, ytr = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    xte = torch.randn(5, 4, generator=g)
    scores = weighted_knn_scores(xtr, ytr, xte, num_classes=3, k=7, temperature=0.5)
    sim = F.normalize(xte, dim=1) @ F.normalize(xtr, dim=1).T
    top, idx = sim.topk(7, dim=1)
    for m in range(5):
        for c in range(3):
            expected = sum(torch.exp(top[m, j] / 0.5) for j in range(7) if ytr[idx[m, j]] == c)
            assert scores[m, c].item() == pytest.approx(float(expected), rel=1e-5, abs=1e-6)


def test_features_are_normalised_so_scale_does_not_matter():
    xtr, ytr = blobs(seed=4, spread=2.0)
    xte, _ = blobs(n_per_class=5, seed=5, spread=2.0)
    a = weighted_knn_predict(xtr, ytr, xte, num_classes=4)
    b = weighted_knn_predict(xtr * 100, ytr, xte * 0.01, num_classes=4)
    assert torch.equal(a, b)


def test_k_larger_than_the_training_set_and_chunking():
    xtr, ytr = blobs(n_per_class=2, seed=6)
    xte, yte = blobs(n_per_class=3, seed=7)
    assert torch.equal(weighted_knn_predict(xtr, ytr, xte, num_classes=4, k=100), yte)
    full = weighted_knn_scores(xtr, ytr, xte, num_classes=4, k=3)
    chunked = weighted_knn_scores(xtr, ytr, xte, num_classes=4, k=3, chunk_size=5)
    assert torch.allclose(full, chunked)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(k=0), "k >= 1"),
        (dict(temperature=0.0), "temperature"),
        (dict(num_classes=2), r"\[0, 2\)"),
    ],
)
def test_bad_arguments_raise(kw, match):
    xtr, ytr = blobs(n_per_class=2)
    with pytest.raises(ValueError, match=match):
        weighted_knn_predict(xtr, ytr, xtr, **{"num_classes": 4, **kw})


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="same width"):
        weighted_knn_predict(torch.randn(5, 3), torch.zeros(5).long(), torch.randn(2, 4), num_classes=2)
    with pytest.raises(ValueError, match="train_labels"):
        weighted_knn_predict(torch.randn(5, 3), torch.zeros(4).long(), torch.randn(2, 3), num_classes=2)


class Doubler(nn.Module):
    feature_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward_features(self, x):
        return self.dropout(x) * self.scale


def test_extract_features_runs_in_eval_mode_and_restores_the_mode():
    net = Doubler().train()
    x, y = torch.randn(10, 3), torch.arange(10)
    feats, labels = extract_features(net, DataLoader(TensorDataset(x, y), batch_size=4))
    assert torch.allclose(feats, 2 * x) and torch.equal(labels, y)  # no dropout: eval mode
    assert net.training and not feats.requires_grad
    with pytest.raises(ValueError, match="no batches"):
        extract_features(net, [])


def test_knn_accuracy_of_a_fixed_backbone():
    xtr, ytr = blobs(seed=8)
    xte, yte = blobs(n_per_class=5, seed=9)
    net = nn.Identity()
    net.forward_features = net.forward
    acc = knn_accuracy(net, [(xtr, ytr)], [(xte, yte)], num_classes=4)
    assert acc == 1.0
