"""TU loaders on tiny raw files in TU Dortmund's format (NAME_A.txt, ...), read by TUDataset; no network."""

import io
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch

from hetmem.backbones.spec import InputSpec
from hetmem.data import DataError, load_task, task_options
from hetmem.data.splits import size_shift_split
from hetmem.data.tu import TU_NAMES, NodeFeatures
from hetmem.errors import ConfigError, DataNotFoundError, HetmemError

pytest.importorskip("torch_geometric")

SIZES = list(range(3, 33))  # 30 graphs of 3..32 nodes
LABELS = [1 if g % 2 else -1 for g in range(30)]  # NCI-style values; TUDataset maps them to 0, 1


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every download attempt fails at once, as with no network; the URLs asked for are recorded."""
    asked = []

    def refuse(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return asked


def tu_files(name: str, sizes=SIZES, labels=LABELS, node_labels=True, node_attributes=False) -> dict[str, str]:
    """The text files of a TU set of fans: node 0 joined to every node, nodes k and k+1 joined.

    Node ids in NAME_A.txt are global and 1-based, each undirected edge listed both ways.
    """
    edges, indicator, node_label = [], [], []
    start = 1
    for g, n in enumerate(sizes):
        pairs = [(0, k) for k in range(1, n)] + [(k, k + 1) for k in range(1, n - 1)]
        for a, b in pairs:
            edges += [(start + a, start + b), (start + b, start + a)]
        indicator += [g + 1] * n
        node_label += [k % 3 for k in range(n)]
        start += n
    files = {
        f"{name}_A.txt": "".join(f"{a}, {b}\n" for a, b in edges),
        f"{name}_graph_indicator.txt": "".join(f"{g}\n" for g in indicator),
        f"{name}_graph_labels.txt": "".join(f"{y}\n" for y in labels),
    }
    if node_labels:
        files[f"{name}_node_labels.txt"] = "".join(f"{v}\n" for v in node_label)
    if node_attributes:
        files[f"{name}_node_attributes.txt"] = "".join(f"{0.5 * v}\n" for v in range(len(indicator)))
    return files


def write_raw(root, name: str, **kwargs) -> None:
    raw = root / "TU" / name / "raw"
    raw.mkdir(parents=True)
    for filename, text in tu_files(name, **kwargs).items():
        (raw / filename).write_text(text)


def zip_bytes(name: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for filename, text in tu_files(name, **kwargs).items():
            zf.writestr(f"{name}/{filename}", text)  # the official zips hold one folder NAME/
    return buf.getvalue()


def node_counts(ds) -> list[int]:
    return [int(ds[i].num_nodes) for i in range(len(ds))]


def labels_of(ds) -> list[int]:
    return [int(ds[i].y) for i in range(len(ds))]


def test_random_split_is_stratified_80_10_10(tmp_path):
    write_raw(tmp_path, "NCI1")
    task = load_task("nci1", root=tmp_path, download=False)
    assert task.sizes() == {"train": 24, "val": 3, "test": 3}
    assert task.metric == "accuracy" and task.num_classes == 2
    assert task.input_spec == InputSpec.graph(node_features=3, edge_features=None)  # node labels 0, 1, 2
    g = task.train[0]
    assert g.x.dtype == torch.float32 and g.x.shape == (g.num_nodes, 3) and torch.equal(g.x.sum(1), torch.ones(g.num_nodes))
    assert g.y.dtype == torch.long and g.y.shape == (1,)
    assert "edge_attr" not in g
    assert sorted(set(labels_of(task.train))) == [0, 1] and labels_of(task.train).count(1) == 12
    everything = sorted(node_counts(task.train) + node_counts(task.val) + node_counts(task.tests["test"]))
    assert everything == SIZES  # disjoint splits covering every graph


def test_size_split_trains_on_small_graphs_and_tests_on_large_ones(tmp_path):
    write_raw(tmp_path, "PROTEINS")
    task = load_task("proteins", root=tmp_path, split="size", download=False)
    assert task.metric == "mcc"
    # 50th percentile of 3..32 is 17.5 -> pool 3..17 (15 graphs, 10% = 2 held out); 90th is 29.1 -> 30, 31, 32
    assert task.sizes() == {"train": 13, "val": 2, "test": 3}
    assert sorted(node_counts(task.tests["test"])) == [30, 31, 32]
    assert max(node_counts(task.train) + node_counts(task.val)) < min(node_counts(task.tests["test"]))
    assert task.info["nodes_below"] == 17.5


def test_size_shift_split_helper():
    train, val, test = size_shift_split(np.array([5, 1, 9, 2, 8, 3, 7, 4, 6, 10]), np.arange(10) % 2, seed=0)
    assert sorted(np.r_[train, val].tolist()) == [0, 1, 3, 5, 7]  # sizes 1..5 are below the median 5.5
    assert test.tolist() == [9] and len(val) == 0  # size 10 is above the 90th percentile 9.1; 10% of 5 rounds to 0


def test_featureless_sets_get_one_hot_degrees(tmp_path):
    write_raw(tmp_path, "IMDB-BINARY", node_labels=False, labels=[g % 2 for g in range(30)])
    task = load_task("imdb-binary", root=tmp_path, download=False)
    assert task.input_spec.node_features == 65
    g = task.tests["test"][0]
    n = g.num_nodes
    expected = [n - 1, 2] + [3] * (n - 3) + [2]  # the hub, the first and last fan nodes, the middle ones
    assert g.x.argmax(1).tolist() == expected and g.x.sum().item() == n

    capped = load_task("imdb-binary", root=tmp_path, download=False, max_degree=4)
    g = capped.tests["test"][0]
    assert capped.input_spec.node_features == 5 and g.x.shape[1] == 5
    assert g.x[0].argmax().item() == 4  # the hub's degree (> 4) shares the last slot

    constant = load_task("imdb-binary", root=tmp_path, download=False, fill_features="constant")
    assert constant.input_spec.node_features == 1
    assert torch.equal(constant.train[0].x, torch.ones(constant.train[0].num_nodes, 1))


def test_use_node_attr_prepends_continuous_attributes(tmp_path):
    write_raw(tmp_path, "PROTEINS", node_attributes=True)
    task = load_task("proteins", root=tmp_path, download=False, use_node_attr=True)
    assert task.input_spec.node_features == 4  # 1 attribute + 3 one-hot labels
    assert load_task("proteins", root=tmp_path, download=False).input_spec.node_features == 3


def test_feature_transform_repr_and_width():
    assert repr(NodeFeatures("degree", 8)) == "NodeFeatures(fill='degree', max_degree=8)"
    assert NodeFeatures("degree", 8).width == 9 and NodeFeatures("constant").width == 1 and NodeFeatures(None).width is None


def test_per_class_keeps_that_many_training_graphs(tmp_path):
    write_raw(tmp_path, "NCI109")
    task = load_task("nci109", root=tmp_path, download=False, per_class=5, seed=3)
    assert len(task.train) == 10 and sorted(labels_of(task.train)) == [0] * 5 + [1] * 5


def test_every_task_is_registered_with_the_same_options():
    assert len(TU_NAMES) == 9
    for task in TU_NAMES:
        assert task_options(task) == {
            "split": "random",
            "split_seed": 0,
            "use_node_attr": False,
            "fill_features": "degree",
            "max_degree": 64,
            "download": True,
        }


@pytest.mark.parametrize(
    "options, match",
    [({"split": "scaffold"}, "split must be one of"), ({"fill_features": "random"}, "fill_features"), ({"max_degree": 0}, "max_degree")],
)
def test_bad_options_raise_config_error(tmp_path, options, match):
    write_raw(tmp_path, "DD")
    with pytest.raises(ConfigError, match=match):
        load_task("dd", root=tmp_path, download=False, **options)


# ----- zips, downloads and missing files ------------------------------------------------------
def test_official_zip_in_the_tu_folder_is_unpacked(tmp_path):
    (tmp_path / "TU").mkdir()
    (tmp_path / "TU" / "REDDIT-BINARY.zip").write_bytes(zip_bytes("REDDIT-BINARY", node_labels=False))
    task = load_task("reddit-binary", root=tmp_path, download=False)
    assert task.sizes() == {"train": 24, "val": 3, "test": 3}
    assert (tmp_path / "TU" / "REDDIT-BINARY" / "raw" / "REDDIT-BINARY_A.txt").is_file()


def test_download_fetches_the_official_zip(tmp_path, monkeypatch):
    asked = []

    def serve(url, *args, timeout=None, **kwargs):
        assert timeout is not None and timeout <= 30
        asked.append(url)
        return io.BytesIO(zip_bytes("IMDB-MULTI", node_labels=False, labels=[g % 3 for g in range(30)]))

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    task = load_task("imdb-multi", root=tmp_path)
    assert asked == ["https://www.chrsmrrs.com/graphkerneldatasets/IMDB-MULTI.zip"]
    assert task.num_classes == 3


def test_missing_set_names_the_zip_url_and_folder(tmp_path, no_network):
    with pytest.raises(DataNotFoundError) as err:
        load_task("reddit-multi-5k", root=tmp_path, download=False)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, HetmemError) and "\n" not in message
    assert "https://www.chrsmrrs.com/graphkerneldatasets/REDDIT-MULTI-5K.zip" in message
    assert str(tmp_path / "TU") in message and str(tmp_path / "TU" / "REDDIT-MULTI-5K" / "raw") in message
    assert no_network == []


def test_failed_download_becomes_data_not_found(tmp_path, no_network):
    with pytest.raises(DataNotFoundError, match="download failed: URLError") as err:
        load_task("reddit-multi-12k", root=tmp_path)
    assert "REDDIT-MULTI-12K.zip" in str(err.value) and "\n" not in str(err.value)
    assert no_network == ["https://www.chrsmrrs.com/graphkerneldatasets/REDDIT-MULTI-12K.zip"]
    assert not (tmp_path / "TU").exists()


# ----- malformed files ------------------------------------------------------------------------
def test_malformed_files_raise_data_error(tmp_path):
    write_raw(tmp_path, "NCI1")
    (tmp_path / "TU" / "NCI1" / "raw" / "NCI1_graph_indicator.txt").write_text("one\ntwo\n")
    with pytest.raises(DataError, match="NCI1 files could not be read"):
        load_task("nci1", root=tmp_path, download=False)

    write_raw(tmp_path / "b", "NCI1")
    (tmp_path / "b" / "TU" / "NCI1" / "raw" / "NCI1_graph_labels.txt").unlink()
    with pytest.raises(DataError, match="NCI1_graph_labels.txt is missing"):
        load_task("nci1", root=tmp_path / "b", download=False)

    (tmp_path / "c" / "TU").mkdir(parents=True)
    (tmp_path / "c" / "TU" / "NCI1.zip").write_bytes(b"PK not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        load_task("nci1", root=tmp_path / "c", download=False)
