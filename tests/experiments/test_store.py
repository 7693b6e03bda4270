import json

from hetmem.experiments.store import ResultsStore, cell_key, environment


def test_keys_are_stable_and_distinct():
    a = cell_key("exp", {"variant": "hma", "slots": 8}, 0)
    assert a == cell_key("exp", {"slots": 8, "variant": "hma"}, 0)  # order of params does not matter
    assert a != cell_key("exp", {"variant": "hma", "slots": 8}, 1)
    assert a != cell_key("other", {"variant": "hma", "slots": 8}, 0)


def test_rows_round_trip_and_filter(tmp_path):
    store = ResultsStore(tmp_path / "s.jsonl")
    assert list(store.rows()) == [] and not store.has("x")
    store.add({"key": "x", "experiment": "a", "metrics": {"test": 1}})
    store.add({"key": "y", "experiment": "b"})
    assert store.keys() == {"x", "y"}
    assert [r["key"] for r in store.rows("a")] == ["x"]
    assert "finished_at" in next(store.rows())


def test_a_partial_last_line_from_a_killed_writer_is_ignored(tmp_path):
    store = ResultsStore(tmp_path / "s.jsonl")
    store.add({"key": "x", "experiment": "a"})
    with open(store.path, "a") as f:
        f.write('{"key": "y", "experim')  # killed mid-write
    assert store.keys() == {"x"}


def test_environment_names_versions_and_machine():
    env = environment()
    assert env["versions"]["torch"] and env["versions"]["hetmem"]
    assert env["machine"]["cores"] >= 1
    json.dumps(env)  # storable
