import json

import pytest

from hetmem.benchmarks import mosaics
from hetmem.benchmarks.mosaics import MosaicsBenchConfig, bench_mosaics
from hetmem.cli import main

TINY = ["--dim", "8", "--num-heads", "2", "--num-layers", "1", "--vocab-size", "11", "--seq-lens", "8",
        "--tokens", "16", "--decode-positions", "2", "--decode-tokens", "1", "--repeats", "1"]


@pytest.fixture(autouse=True)
def _in_process(monkeypatch):
    """Peak memory in this process instead of a fresh one per model (spawning costs seconds)."""
    monkeypatch.setattr(mosaics, "run_isolated", lambda fn, *args: fn(*args))


def test_bench_reports_every_number_on_a_tiny_problem():
    cfg = MosaicsBenchConfig(dim=8, num_heads=2, num_layers=1, vocab_size=11, seq_lens=(8, 16), tokens=32,
                             decode_positions=(2, 6), decode_tokens=2, repeats=1, profile=True)
    result = bench_mosaics(cfg)
    assert set(result["train"]) == {"8", "16"} and result["train"]["16"]["batch_size"] == 2
    for row in result["train"].values():
        for name in ("mosaic", "gpt"):
            assert row[name]["min_s"] > 0 and row[name]["median_s"] >= row[name]["min_s"] and isinstance(row[name]["peak_mb"], float)
        assert row["ratio"] == row["mosaic"]["min_s"] / row["gpt"]["min_s"]
    for row in result["decode"].values():
        assert all(row[name]["cached_tokens_per_s"] > 0 and row[name]["recompute_tokens_per_s"] > 0 for name in ("mosaic", "gpt"))
    assert set(result["decode_flatness"]) == {"mosaic", "gpt"}
    assert result["profile"] and {"op", "self_ms", "share", "calls"} <= set(result["profile"][0])
    assert result["params"]["gpt"] > result["params"]["mosaic"]  # the GPT adds its positional table


def test_cli_json_prints_one_object(capsys):
    assert main(["bench", "mosaics", "--json", *TINY]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["seq_lens"] == [8] and "ratio" in out["train"]["8"]


@pytest.mark.parametrize("extra, match", [(["--seq-lens", "1"], "lengths >= 2"), (["--dim", "9"], "divisible"),
                                          (["--threads", "0"], "--threads")])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, extra, match):
    assert main(["bench", "mosaics", *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err


def test_cli_rejects_a_malformed_length_list(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "mosaics", "--seq-lens", "a,b"])
    assert exc.value.code == 2 and "comma-separated integers" in capsys.readouterr().err
