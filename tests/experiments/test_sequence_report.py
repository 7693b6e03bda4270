"""The Memory Mosaics report sections from hand-made store rows: tables, verdicts, figures."""

from pathlib import Path

from hetmem.experiments.sequence_report import THESIS_REGBENCH, sequence_section

ENV = {"machine": {"cores": 2, "cpu": "x86_64", "cuda": None, "torch_threads": 1}, "versions": {"torch": "2", "hetmem": "0"},
       "finished_at": "2026-01-01T00:00:00", "config": {"epochs": 1}}


def _moons_row(heads, seed, late_error):
    context = list(range(4, 401, 4))
    error = [0.8 if c < 67 else late_error for c in context]
    eye = [[1.0 if i == j else 0.0 for j in range(3)] for i in range(3)]
    flat = [[0.5] * 3 for _ in range(3)]
    moduli = eye if heads == 3 else flat
    return {**ENV, "cell": {"heads": heads, "steps": 1500}, "seed": seed, "metrics": {"test": {"loss": 0.01}},
            "study": {"context": context, "rollout_error": error, "rollout_steps": 25, "periods_steps": [22.2, 44.4, 66.7],
                      "lcm_steps": 133.3, "num_parameters": 54, "moduli": {k: moduli for k in ("key", "value", "out")},
                      "permutation_mass": {k: 1.0 if heads == 3 else 1 / 3 for k in ("key", "value", "out")}}}


def _regbench_row(n, model, seed, acc):
    scores = {"accuracy": acc, "tvd": 1 - acc, "last_accuracy": acc, "last_tvd": 1 - acc, "loss": 1.0}
    return {**ENV, "cell": {"train_languages": n, "model": model}, "seed": seed,
            "metrics": {"val": scores, "test": scores, "iid": scores}, "study": {"num_parameters": 1000}}


def _charlm_row(model, seed):
    T = 128
    curve = [2.5 - (0.3 if model == "mosaic" else 0.1) * min(p, 64) / 64 for p in range(4 * T if model == "mosaic" else T)]
    return {**ENV, "cell": {"model": model}, "seed": seed, "metrics": {s: {"loss": 2.3} for s in ("val", "plays", "milton")},
            "study": {"train_len": T, "milton": curve, "plays": curve[:T], "num_parameters": 400000}}


def rel(p):
    return Path(p).name


def test_moons_section_calls_three_heads_better_and_draws_both_figures(tmp_path):
    rows = [_moons_row(1, s, 0.75 + 0.01 * s) for s in range(3)] + [_moons_row(3, s, 0.1 + 0.01 * s) for s in range(3)]
    text = "\n".join(sequence_section("moons", rows, tmp_path, rel))
    assert "| 3 | 1,500 | 54 |" in text and "1.000 ± 0.000" in text
    assert "3 heads reach an error of 0.110 against 0.760 for 1 head (better by more than one standard deviation)" in text
    assert "3 of 3 3-head seeds learned near-permutation maps" in text
    for fig in ("moons-error.png", "moons-weights.png"):
        assert (tmp_path / fig).stat().st_size > 5000 and f"]({fig})" in text


def test_regbench_section_puts_the_thesis_beside_ours(tmp_path):
    rows = [_regbench_row(n, m, s, (0.9 if m == "mosaic" else 0.5) + 0.01 * s) for n in (100, 500) for m in ("mosaic", "gpt") for s in range(3)]
    text = "\n".join(sequence_section("regbench", rows, tmp_path, rel))
    assert f"≈ {THESIS_REGBENCH['mosaic_accuracy'][100]}" in text and f"≈ {THESIS_REGBENCH['gpt_tvd'][500]}" in text
    assert "100 languages: MM − GPT accuracy +0.400 (beyond one std; thesis +0.405)" in text
    assert "without** the 1/2" in text and (tmp_path / "regbench.png").stat().st_size > 5000


def test_charlm_section_measures_what_context_buys_and_the_extrapolation(tmp_path):
    rows = [_charlm_row(m, s) for m in ("mosaic", "gpt") for s in range(2)]
    text = "\n".join(sequence_section("charlm", rows, tmp_path, rel))
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert "positions 128–256" in header and "positions 256–512" in header
    gpt_row = next(line for line in text.splitlines() if line.startswith("| GPT"))
    assert gpt_row.rstrip(" |").endswith("– | –")  # no GPT numbers past its positional table
    assert "is -0.2" in text and "for the Memory Mosaic" in text
    assert (tmp_path / "charlm-milton.png").stat().st_size > 5000
