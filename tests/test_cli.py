import json

import pytest

from hetmem.cli import main


def test_bench_rma_json_prints_one_object(capsys):
    code = main(["bench", "rma", "--json", "--batch-size", "4", "--queue-size", "8", "--feature-dim", "8",
                 "--label-dim", "4", "--num-heads", "2", "--repeats", "1"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["max_abs_diff"] < 1e-5 and out["speedup"] > 0


def test_bad_bench_argument_is_one_line_and_exit_2(capsys):
    assert main(["bench", "rma", "--queue-size", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "hetmem: error: --queue-size must be a positive int, got 0"


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
