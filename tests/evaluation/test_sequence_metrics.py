import torch

from hetmem.data import load_task
from hetmem.evaluation.sequence_metrics import pfa_scores, token_loss_scores


def _mean(scores):
    return {k: float(s / n) for k, (s, n) in scores.items()}


def _test_batch():
    task = load_task("regbench", seed=0, num_languages=5, num_val_languages=5, num_test_languages=16, num_iid=0)
    return task.tests["test"].batch(seed=0, epoch=0, index=0, batch_size=16)


def test_a_predictor_uniform_over_legal_continuations_has_tvd_0_and_accuracy_1():
    b = _test_batch()
    logits = torch.where(b["dist"] > 0, 0.0, -1e4)  # softmax = uniform over the legal symbols
    m = _mean(pfa_scores(logits, b["dist"], b["mask"], b["last"]))
    assert m["accuracy"] == 1.0 and m["last_accuracy"] == 1.0
    assert m["tvd"] < 1e-4 and m["last_tvd"] < 1e-4


def test_a_predictor_of_illegal_tokens_has_accuracy_0_and_tvd_near_2():
    b = _test_batch()
    logits = torch.where(b["dist"] > 0, -1e4, 0.0)  # all mass on illegal tokens
    m = _mean(pfa_scores(logits, b["dist"], b["mask"], b["last"]))
    assert m["accuracy"] == 0.0 and m["last_accuracy"] == 0.0
    assert abs(m["tvd"] - 2.0) < 1e-3  # the L1 form: no 1/2 factor


def test_a_legal_but_peaked_predictor_is_accurate_yet_far_in_distribution():
    b = _test_batch()
    first_legal = (b["dist"] > 0).float().argmax(-1)
    logits = torch.nn.functional.one_hot(first_legal, 20).float() * 50
    m = _mean(pfa_scores(logits, b["dist"], b["mask"], b["last"]))
    assert m["accuracy"] == 1.0 and 0.1 < m["tvd"] < 2.0


def test_unscored_positions_and_padding_do_not_count():
    b = _test_batch()
    n = int(b["mask"].sum())
    s = pfa_scores(torch.randn(*b["dist"].shape), b["dist"], b["mask"], b["last"])
    assert int(s["accuracy"][1]) == n < b["mask"].numel() and int(s["last_accuracy"][1]) == len(b["last"])


def test_token_loss_ignores_padded_targets():
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    padded = targets.clone()
    padded[1, 3:] = -100
    total, count = token_loss_scores(logits, padded)["loss"]
    keep = padded != -100
    expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert int(count) == 8 and torch.allclose(total / count, expected)
