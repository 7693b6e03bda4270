"""OGB loaders on a tiny folder in the layout ogb's PygGraphPropPredDataset reads (the official zip's
RELEASE_v1.txt, raw/*.csv.gz, split/scaffold/*.csv.gz); no network, no prompt."""

import builtins
import gzip
import io
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch

from hetmem.backbones.spec import InputSpec
from hetmem.data import DataError, load_task, task_options
from hetmem.data.ogb import OGB_TASKS, ogb_meta
from hetmem.errors import DataNotFoundError, HetmemError

pytest.importorskip("ogb")
pytest.importorskip("rdkit")

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCC", "C1CC1", "O=C=O", "CCOCC", "c1ccncc1", "CC(C)O", "CC#N", "OCCO"]
LABELS = [i % 2 for i in range(12)]
SPLIT = {"train": list(range(8)), "valid": [8, 9], "test": [10, 11]}
URL = "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/{}.zip"


@pytest.fixture(autouse=True)
def no_network_no_prompt(monkeypatch):
    """Downloads fail at once (recorded), and any stdin prompt fails the test."""
    asked = []

    def refuse(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("network disabled in tests")

    def no_prompt(*args, **kwargs):
        raise AssertionError(f"input() was called: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(builtins, "input", no_prompt)
    return asked


def gz_csv(rows) -> bytes:
    return gzip.compress("".join(",".join(str(v) for v in np.atleast_1d(r)) + "\n" for r in rows).encode())


def ogb_files(labels=LABELS, split=SPLIT, release="RELEASE_v1.txt") -> dict[str, bytes]:
    """Path inside the data set folder -> bytes, as in OGB's csv_mol_download zips.

    Each bond is stored once (ogb adds the reverse edge, ``add_inverse_edge=True``).
    """
    from ogb.utils import smiles2graph

    graphs = [smiles2graph(s) for s in SMILES]
    files = {
        "raw/num-node-list.csv.gz": gz_csv([g["num_nodes"] for g in graphs]),
        "raw/num-edge-list.csv.gz": gz_csv([g["edge_index"].shape[1] // 2 for g in graphs]),
        "raw/edge.csv.gz": gz_csv([e for g in graphs for e in g["edge_index"][:, ::2].T]),
        "raw/edge-feat.csv.gz": gz_csv([f for g in graphs for f in g["edge_feat"][::2]]),
        "raw/node-feat.csv.gz": gz_csv([f for g in graphs for f in g["node_feat"]]),
        "raw/graph-label.csv.gz": gz_csv(labels),
        "mapping/mol.csv.gz": gzip.compress(("label,smiles\n" + "".join(f"{y},{s}\n" for y, s in zip(LABELS, SMILES))).encode()),
        **{f"split/scaffold/{part}.csv.gz": gz_csv(idx) for part, idx in split.items()},
    }
    if release:
        files[release] = b""
    return files


def write_folder(folder, files: dict[str, bytes]) -> None:
    for name, raw in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)


def zip_bytes(inner: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, raw in files.items():
            zf.writestr(f"{inner}/{name}", raw)
    return buf.getvalue()


@pytest.fixture
def bace_root(tmp_path):
    write_folder(tmp_path / "ogb" / "ogbg_molbace", ogb_files())
    return tmp_path


def test_loads_the_scaffold_split_as_hetmem_graphs(bace_root):
    task = load_task("ogbg-molbace", root=bace_root, download=False)
    assert task.sizes() == {"train": 8, "val": 2, "test": 2}
    assert task.num_classes == 2 and task.metric == "rocauc"
    assert task.input_spec == InputSpec.graph("atom", "bond")
    assert task.info["ogb_name"] == "ogbg-molbace"
    g = task.train[1]  # benzene
    assert g.x.dtype == torch.long and g.x.shape == (6, 9)
    assert g.edge_index.shape == (2, 12) and g.edge_attr.shape == (12, 3)  # both directions
    assert g.y.dtype == torch.long and g.y.shape == (1,) and g.y.tolist() == [1]
    assert [int(task.tests["test"][i].y) for i in range(2)] == [LABELS[10], LABELS[11]]

    from ogb.graphproppred import Evaluator  # the runner's ROC-AUC reads info["ogb_name"]

    score = Evaluator(task.info["ogb_name"]).eval({"y_true": np.array([[0], [1]]), "y_pred": np.array([[0.2], [0.9]])})
    assert score["rocauc"] == 1.0


def test_second_load_reads_the_processed_file(bace_root):
    first = load_task("ogbg-molbace", root=bace_root, download=False)
    assert (bace_root / "ogb" / "ogbg_molbace" / "processed" / "geometric_data_processed.pt").is_file()
    second = load_task("ogbg-molbace", root=bace_root, download=False, per_class=2, seed=1)
    assert torch.equal(first.val[0].x, second.val[0].x)
    assert len(second.train) == 4 and sorted(int(second.train[i].y) for i in range(4)) == [0, 0, 1, 1]


def test_unlabelled_graphs_are_left_out(tmp_path):
    labels = ["nan" if i == 3 else y for i, y in enumerate(LABELS)]
    write_folder(tmp_path / "ogb" / "ogbg_molbbbp", ogb_files(labels=labels))
    task = load_task("ogbg-molbbbp", root=tmp_path, download=False)
    assert task.sizes() == {"train": 7, "val": 2, "test": 2}
    assert task.info["unlabelled_dropped"] == {"train": 1, "val": 0, "test": 0}
    assert task.train[0].y.dtype == torch.long and task.train[0].y.shape == (1,)


def test_official_zip_in_the_ogb_folder_is_unpacked(tmp_path):
    (tmp_path / "ogb").mkdir()
    (tmp_path / "ogb" / "hiv.zip").write_bytes(zip_bytes("hiv", ogb_files()))
    task = load_task("ogbg-molhiv", root=tmp_path, download=False)
    assert task.sizes() == {"train": 8, "val": 2, "test": 2}
    assert (tmp_path / "ogb" / "ogbg_molhiv" / "RELEASE_v1.txt").is_file()


def test_download_fetches_the_url_in_ogbs_master_table(tmp_path, monkeypatch):
    asked = []

    def serve(url, *args, timeout=None, **kwargs):
        assert timeout is not None and timeout <= 30
        asked.append(url)
        return io.BytesIO(zip_bytes("bbbp", ogb_files()))

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    task = load_task("ogbg-molbbbp", root=tmp_path)
    assert asked == [URL.format("bbbp")] == [ogb_meta("ogbg-molbbbp")["url"]]
    assert task.sizes()["train"] == 8


def test_tasks_and_options():
    assert OGB_TASKS == ("ogbg-molbace", "ogbg-molbbbp", "ogbg-molhiv")
    for name in OGB_TASKS:
        assert task_options(name) == {"download": True}


# ----- missing files ------------------------------------------------------------------------
@pytest.mark.parametrize("name, zip_name", [("ogbg-molbace", "bace"), ("ogbg-molhiv", "hiv")])
def test_missing_set_names_the_zip_url_and_folder(tmp_path, no_network_no_prompt, name, zip_name):
    with pytest.raises(DataNotFoundError) as err:
        load_task(name, root=tmp_path, download=False)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, HetmemError) and "\n" not in message
    assert f"{zip_name}.zip ({URL.format(zip_name)})" in message and str(tmp_path / "ogb") in message
    assert no_network_no_prompt == []


def test_failed_download_becomes_data_not_found_and_leaves_no_folder(tmp_path, no_network_no_prompt):
    with pytest.raises(DataNotFoundError, match="download failed: URLError") as err:
        load_task("ogbg-molhiv", root=tmp_path)
    assert URL.format("hiv") in str(err.value)
    assert no_network_no_prompt == [URL.format("hiv")]
    assert not (tmp_path / "ogb").exists()  # an empty folder here would make ogb prompt next time


def test_an_empty_leftover_folder_counts_as_missing(tmp_path):
    (tmp_path / "ogb" / "ogbg_molbace" / "raw").mkdir(parents=True)  # what an interrupted ogb download leaves
    with pytest.raises(DataNotFoundError, match="bace.zip"):
        load_task("ogbg-molbace", root=tmp_path, download=False)


def test_a_copy_without_release_file_is_refused_without_prompting(tmp_path):
    write_folder(tmp_path / "ogb" / "ogbg_molbace", ogb_files(release=None))
    with pytest.raises(DataError, match="RELEASE_v1.txt is missing"):
        load_task("ogbg-molbace", root=tmp_path, download=False)


# ----- malformed files ------------------------------------------------------------------------
def test_malformed_files_raise_data_error(tmp_path):
    files = ogb_files()
    files["raw/node-feat.csv.gz"] = b"not gzip at all"
    write_folder(tmp_path / "ogb" / "ogbg_molbace", files)
    with pytest.raises(DataError, match="ogbg-molbace files could not be read"):
        load_task("ogbg-molbace", root=tmp_path, download=False)

    write_folder(tmp_path / "b" / "ogb" / "ogbg_molbace", ogb_files(labels=[2] * 12))
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        load_task("ogbg-molbace", root=tmp_path / "b", download=False)

    write_folder(tmp_path / "c" / "ogb" / "ogbg_molbace", ogb_files(split={**SPLIT, "test": [10, 99]}))
    with pytest.raises(DataError, match="outside"):
        load_task("ogbg-molbace", root=tmp_path / "c", download=False)

    (tmp_path / "d" / "ogb").mkdir(parents=True)
    (tmp_path / "d" / "ogb" / "bace.zip").write_bytes(zip_bytes("wrong-folder", ogb_files()))
    with pytest.raises(DataError, match="expected a folder bace/"):
        load_task("ogbg-molbace", root=tmp_path / "d", download=False)
