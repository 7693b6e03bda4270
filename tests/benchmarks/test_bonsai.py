import pytest

from hetmem.benchmarks.bonsai import BonsaiBenchConfig, bench_bonsai
from hetmem.cli import main
from tests.mnist_wheel import write_mnist_wheel


def test_bench_bonsai_measures_and_extrapolates(tmp_path, monkeypatch, capsys):
    write_mnist_wheel(tmp_path, sizes=(200, 60, 40))
    monkeypatch.setenv("HETMEM_DATA", str(tmp_path))
    out = bench_bonsai(BonsaiBenchConfig(fraction=0.01, hidden_dim=8))
    assert out["steps_run"] == [1, 5, 5] and out["full_steps"] == [51, 501, 501] and out["rows"] == 200
    assert out["full_pipeline_s_extrapolated"] == pytest.approx(out["train_s"] * 1053 / 11)
    assert main(["bench", "bonsai", "--fraction", "0.01", "--json"]) == 0
    assert '"full_steps": [51, 501, 501]' in capsys.readouterr().out
    assert main(["bench", "bonsai", "--fraction", "2"]) == 2
