"""Round trip: train digits, then predict its test split from Python, .npy, .pt and .csv files."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hetmem
from hetmem.cli import main
from hetmem.train.config import resolve_config
from hetmem.train.runner import evaluate, train


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One epoch of HMA on digits (the paper's batch context at test time), and its test split."""
    from hetmem.data import load_task

    out = tmp_path_factory.mktemp("predict") / "run"
    cfg = resolve_config({"task": "digits", "epochs": 1, "seeds": [0], "progress": False, "eval_batch_size": 50})
    train(cfg, out)
    test = load_task("digits", seed=0).tests["test"]
    x = torch.stack([test[i][0] for i in range(len(test))])  # (N, 1, 8, 8)
    y = torch.stack([test[i][1] for i in range(len(test))]).long()
    return out, x, y, evaluate(out)["test"]


def test_predictions_equal_what_evaluate_scores(digits_run):
    out, x, y, scored = digits_run
    trained = hetmem.load_trained(out)
    assert trained.eval_context == "batch" and trained.batch_size == 50 and not trained.model.training
    assert "eval_context 'batch'" in trained.describe()
    pred = trained.predict(x)
    assert float((pred.labels == y).float().mean()) == pytest.approx(scored["accuracy"], abs=1e-9)
    assert float(F.cross_entropy(pred.logits, y)) == pytest.approx(scored["loss"], abs=1e-6)
    assert torch.allclose(pred.probabilities.sum(1), torch.ones(len(y)))
    flat = trained.predict(x.reshape(len(x), -1).double().numpy())  # flattened float64 rows
    assert torch.equal(flat.labels, pred.labels) and torch.allclose(flat.logits, pred.logits)


def test_single_context_does_not_depend_on_the_batch(digits_run):
    out, x, _, _ = digits_run
    x = x[:40]
    trained = hetmem.load_trained(out, eval_context="single")
    assert "eval_context 'single'" in trained.describe()
    full = trained.predict(x)
    assert torch.allclose(trained.predict(x, batch_size=7).logits, full.logits, atol=1e-5)
    assert torch.allclose(trained.predict(x[3]).logits, full.logits[3:4], atol=1e-5)  # one sample


def test_load_trained_needs_no_data(digits_run, monkeypatch):
    import hetmem.train.runner as runner

    def no_data(*args, **kwargs):
        raise AssertionError("the task's data was loaded")

    monkeypatch.setattr(runner, "_load_task", no_data)
    trained = hetmem.load_trained(digits_run[0])
    assert trained.input_spec.shape == (1, 8, 8) and trained.num_classes == 10


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(4, 63), r"inputs have shape \(4, 63\); this model takes \(N, 1, 8, 8\) or flattened rows \(N, 64\)"),
    (torch.zeros(4, 64, dtype=torch.long), "inputs must be floating-point .*got dtype torch.int64"),
    (np.zeros((4, 64), dtype=np.uint8), "inputs must be floating-point, got numpy dtype uint8"),
    (torch.full((2, 64), float("nan")), "inputs contain 128 NaN or Inf values"),
    (torch.zeros(0, 64), r"inputs have shape \(0, 1, 8, 8\)"),
])
def test_wrong_inputs_are_one_clear_error(digits_run, bad, match):
    with pytest.raises(ValueError, match=match):
        hetmem.load_trained(digits_run[0]).predict(bad)


def test_cli_predict_files_round_trip(digits_run, tmp_path, capsys):
    out, x, y, scored = digits_run
    accuracy = scored["accuracy"]
    np.save(tmp_path / "x.npy", x.numpy())
    assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / "x.npy")]) == 0
    printed = capsys.readouterr().out
    assert "eval_context 'batch'" in printed and f"wrote {len(y)} predictions to {tmp_path / 'x.predictions.csv'}" in printed
    lines = (tmp_path / "x.predictions.csv").read_text().splitlines()
    assert lines[0] == "row,prediction," + ",".join(f"prob_{c}" for c in range(10)) and len(lines) == len(y) + 1
    csv_pred = torch.tensor([int(line.split(",")[1]) for line in lines[1:]])
    assert float((csv_pred == y).float().mean()) == pytest.approx(accuracy, abs=1e-9)

    header = "," .join(f"pixel{i}" for i in range(64))
    (tmp_path / "rows.csv").write_text(header + "\n" + "\n".join(",".join(f"{v:.9g}" for v in row) for row in x.reshape(len(x), -1).tolist()) + "\n")
    torch.save({"x": x}, tmp_path / "x.pt")
    for name in ("rows.csv", "x.pt"):
        target = tmp_path / f"{name}.npz"
        assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / name), "--out", str(target)]) == 0
        saved = np.load(target)
        assert np.array_equal(saved["predictions"], csv_pred.numpy()) and saved["probabilities"].shape == (len(y), 10)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hetmem: error: "), err
    return err


def test_cli_predict_bad_input_is_one_line_and_keeps_earlier_files(digits_run, tmp_path, capsys):
    out = digits_run[0]
    np.save(tmp_path / "wide.npy", np.zeros((3, 65), dtype=np.float32))
    assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / "wide.npy")]) == 2
    assert "inputs have shape (3, 65)" in one_error_line(capsys)
    assert not (tmp_path / "wide.predictions.csv").exists()
    (tmp_path / "x.txt").write_text("1,2\n")
    assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / "x.txt")]) == 2
    assert "unsupported file type '.txt'" in one_error_line(capsys)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / "bad.csv")]) == 2
    assert "line 3: expected comma-separated numbers" in one_error_line(capsys)
    np.save(tmp_path / "ok.npy", np.zeros((2, 64), dtype=np.float32))
    (tmp_path / "ok.predictions.csv").write_text("earlier\n")
    assert main(["predict", "--checkpoint", str(out), "--input", str(tmp_path / "ok.npy")]) == 2
    assert "already exists; pass --overwrite" in one_error_line(capsys)
    assert (tmp_path / "ok.predictions.csv").read_text() == "earlier\n"
    assert main(["predict", "--checkpoint", str(tmp_path / "none.ckpt"), "--input", str(tmp_path / "ok.npy"), "--overwrite"]) == 2
    assert "does not exist" in one_error_line(capsys)
