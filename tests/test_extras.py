import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

from hetmem import __version__
from hetmem.cli import main
from hetmem.errors import MissingExtraError
from hetmem.extras import EXTRAS, extra_of, missing_extra, optional_import

ROOT = Path(__file__).resolve().parents[1]


def _hide(monkeypatch, *modules: str) -> None:
    """As if ``modules`` were not installed: ``import`` of them (or below them) fails."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules) or name.startswith("hetmem.train"):
            monkeypatch.delitem(sys.modules, name)  # restored after the test
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_the_installed_torch_satisfies_the_declared_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (torch_req,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "torch"]
    assert torch_req.specifier, "torch must be a range, not unpinned"
    assert Version(torch.__version__).public in torch_req.specifier
    assert "==" not in str(torch_req.specifier)  # a range users can live with, not a pin


def test_every_extra_in_pyproject_is_described_and_vice_versa():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) == set(extras) - {"all", "dev"}


def test_train_on_a_core_install_names_the_extra(monkeypatch, tmp_path, capsys):
    _hide(monkeypatch, "lightning", "pydantic")
    assert main(["train", "--task", "digits", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "hetmem: error: hetmem train needs 'lightning', which is not installed: pip install 'hetmem[train]' (or 'hetmem[all]')"
    )
    assert not (tmp_path / "r").exists()


def test_a_task_without_its_data_extra_names_it_and_writes_nothing(monkeypatch, tmp_path, capsys):
    import hetmem.train.config  # noqa: F401  (the train extra is there)

    _hide(monkeypatch, "sklearn")
    assert main(["train", "--task", "digits", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs 'sklearn'" in err and "pip install 'hetmem[data]'" in err
    assert not (tmp_path / "r").exists()


def test_missing_extra_maps_modules_to_extras():
    assert extra_of("matplotlib.pyplot") == "figures" and extra_of("torch_geometric.nn") == "graph"
    assert extra_of("numpy") is None
    err = missing_extra(ModuleNotFoundError("No module named 'ogb'", name="ogb"), "hetmem train")
    assert isinstance(err, MissingExtraError) and "hetmem[graph]" in str(err)
    assert missing_extra(ModuleNotFoundError("x", name="surely_not_a_module"), "hetmem train") is None


def test_optional_import_of_a_hidden_module_names_its_extra(monkeypatch):
    _hide(monkeypatch, "torch_geometric")
    with pytest.raises(MissingExtraError, match=r"graph backbones needs 'torch_geometric'.*hetmem\[graph\]"):
        optional_import("torch_geometric.nn", needed_by="graph backbones")


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "hetmem", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"hetmem {__version__}"
