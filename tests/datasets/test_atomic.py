"""Atomic catalog datasets: a failed or killed save never leaves a truncated artifact, versioned
saves still work through a real DataCatalog, and an unreadable old version is named clearly."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, Version
from kedro.io.core import DatasetError
from kedro_datasets.pickle import PickleDataset

from crossrec.datasets.atomic import (
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicParquetDataset,
    AtomicPickleDataset,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FRAME = pd.DataFrame({"user": ["u1", "u2"], "score": [0.5, 0.25]})


class Boom:
    """Pickles only after the bytes before it were written: a save that fails midway."""

    def __reduce__(self):
        raise RuntimeError("disk full (simulated)")


def _half_then_raise(self, path_or_buf=None, *args, **kwargs):
    path_or_buf.write(b"PAR1 half a table" if "b" in getattr(path_or_buf, "mode", "b") else "a,")
    raise OSError("disk full (simulated)")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    ("cls", "name", "good", "breaks"),
    [
        (AtomicPickleDataset, "m.pkl", {"v": 1}, None),
        (AtomicJSONDataset, "r.json", {"v": 1}, None),
        (AtomicParquetDataset, "t.parquet", FRAME, "to_parquet"),
        (AtomicCSVDataset, "t.csv", FRAME, "to_csv"),
    ],
)
def test_save_failing_midway_keeps_previous_file_and_no_temp(
    cls, name, good, breaks, tmp_path, monkeypatch
):
    dataset = cls(filepath=str(tmp_path / name))
    dataset.save(good)
    before = (tmp_path / name).read_bytes()
    if breaks:
        monkeypatch.setattr(pd.DataFrame, breaks, _half_then_raise)
        bad = FRAME
    elif cls is AtomicPickleDataset:
        bad = [b"x" * (1 << 20), Boom()]  # 1 MiB is written (framed) before Boom raises
    else:
        bad = {"big": "x" * (1 << 20), "bad": object()}  # json.dump streams, then TypeError
    with pytest.raises(DatasetError):
        dataset.save(bad)
    assert (tmp_path / name).read_bytes() == before
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    loaded = cls(filepath=str(tmp_path / name)).load()
    if isinstance(good, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded, good)
    else:
        assert loaded == good


def test_plain_kedro_pickle_would_be_truncated(tmp_path):
    """The failure the atomic classes fix (guards the test above against testing nothing)."""
    plain = PickleDataset(filepath=str(tmp_path / "m.pkl"))
    plain.save({"v": 1})
    with pytest.raises(DatasetError):
        plain.save([b"x" * (1 << 20), Boom()])
    with pytest.raises(DatasetError):
        plain.load()


def test_versioned_failed_save_leaves_no_empty_version(tmp_path):
    dataset = AtomicPickleDataset(filepath=str(tmp_path / "m.pkl"), version=Version(None, None))
    dataset.save({"v": 1})
    with pytest.raises(DatasetError):
        dataset.save([b"x" * (1 << 20), Boom()])
    assert len(list((tmp_path / "m.pkl").iterdir())) == 1 and _leftovers(tmp_path) == []
    assert AtomicPickleDataset(
        filepath=str(tmp_path / "m.pkl"), version=Version(None, None)
    ).load() == {"v": 1}


SLOW_SAVE = textwrap.dedent(
    """
    import sys, time
    from kedro.io import Version
    from {module} import {cls}

    class Slow:
        # a large artifact that takes a while to write (1 MiB per piece)
        def __reduce__(self):
            time.sleep(0.01)
            return (bytes, (b"y" * (1 << 20),))

    dataset = {cls}(filepath=sys.argv[1], version=Version(None, None))
    print("saving", flush=True)
    dataset.save([Slow() for _ in range(2000)])
    print("done", flush=True)
    """
)


def _kill_mid_save(filepath: Path, module: str, cls: str) -> None:
    """Start a slow versioned save in a subprocess and SIGKILL it halfway through writing."""
    (previous,) = [d.name for d in filepath.iterdir()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE.format(module=module, cls=cls), str(filepath)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == b"saving"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill once the new version holds several MiB
            new = [d for d in filepath.iterdir() if d.is_dir() and d.name != previous]
            if new and any(p.stat().st_size > 8 << 20 for p in new[0].iterdir()):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the slow save never started writing")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def test_killed_save_keeps_previous_version_loadable(tmp_path):
    path = tmp_path / "trained_model.pkl"
    AtomicPickleDataset(filepath=str(path), version=Version(None, None)).save({"epoch": 1})
    _kill_mid_save(path, "crossrec.datasets.atomic", "AtomicPickleDataset")
    assert len(list(path.iterdir())) == 2  # the killed save's version folder holds only a temp
    fresh = AtomicPickleDataset(filepath=str(path), version=Version(None, None))
    assert fresh.load() == {"epoch": 1}
    assert [p.name for p in path.rglob("trained_model.pkl") if p.is_file()] == ["trained_model.pkl"]


def test_killed_plain_save_blocks_loading_with_a_clear_message(tmp_path):
    """A truncated newest version (a non-atomic writer killed mid-save) names the file."""
    path = tmp_path / "trained_model.pkl"
    AtomicPickleDataset(filepath=str(path), version=Version(None, None)).save({"epoch": 1})
    _kill_mid_save(path, "kedro_datasets.pickle", "PickleDataset")
    newest = sorted(path.iterdir())[-1]
    with pytest.raises(DatasetError) as err:
        AtomicPickleDataset(filepath=str(path), version=Version(None, None)).load()
    message = str(err.value)
    assert str(newest / "trained_model.pkl") in message
    assert f"delete its version folder '{newest}'" in message and "truncated" in message
    # following the advice works: the previous version loads again
    for leftover in newest.iterdir():
        leftover.unlink()
    newest.rmdir()
    assert AtomicPickleDataset(filepath=str(path), version=Version(None, None)).load() == {
        "epoch": 1
    }


def test_unreadable_unversioned_file_is_named(tmp_path):
    (tmp_path / "r.json").write_text('{"truncated": [1, 2')
    with pytest.raises(DatasetError, match=r"r\.json.*delete it and re-run"):
        AtomicJSONDataset(filepath=str(tmp_path / "r.json")).load()
    with pytest.raises(DatasetError, match="not exist|No such file"):
        AtomicJSONDataset(filepath=str(tmp_path / "absent.json")).load()


def test_versioned_round_trip_through_catalog_from_yaml(tmp_path):
    config = yaml.safe_load(
        f"""
        trained_model:
          type: crossrec.datasets.atomic.AtomicPickleDataset
          filepath: {tmp_path}/06_models/trained_model.pkl
          versioned: true
        history:
          type: crossrec.datasets.atomic.AtomicCSVDataset
          filepath: {tmp_path}/08_reporting/history.csv
          versioned: true
          save_args:
            index: false
        metrics:
          type: crossrec.datasets.atomic.AtomicJSONDataset
          filepath: {tmp_path}/08_reporting/metrics.json
          save_args:
            indent: 2
        items:
          type: crossrec.datasets.atomic.AtomicParquetDataset
          filepath: {tmp_path}/02_intermediate/items.parquet
        tuned:
          type: crossrec.datasets.atomic.AtomicYAMLDataset
          filepath: {tmp_path}/conf/parameters.yml
        """
    )
    catalog = DataCatalog.from_config(config)
    catalog.save("trained_model", {"epoch": 1})
    first = catalog["trained_model"].list_versions(full_path=False)
    assert len(first) == 1
    time.sleep(0.01)  # versions are millisecond timestamps
    catalog = DataCatalog.from_config(config)
    catalog.save("trained_model", {"epoch": 2})
    catalog.save("history", FRAME)
    catalog.save("metrics", {"recall@20": 0.1})
    catalog.save("items", FRAME)
    catalog.save("tuned", {"lr": 0.01})
    again = DataCatalog.from_config(config)
    assert again.load("trained_model") == {"epoch": 2}
    pd.testing.assert_frame_equal(again.load("history"), FRAME)
    pd.testing.assert_frame_equal(again.load("items"), FRAME)
    assert again.load("metrics") == {"recall@20": 0.1} and again.load("tuned") == {"lr": 0.01}
    assert len(again["trained_model"].list_versions()) == 2
    pinned = DataCatalog.from_config(config, load_versions={"trained_model": first[0]})
    assert pinned.load("trained_model") == {"epoch": 1}
    assert _leftovers(tmp_path) == []
    with pytest.raises(DatasetError, match="must not exist"):  # Kedro's own version guard
        pinned_save = AtomicPickleDataset(
            filepath=f"{tmp_path}/06_models/trained_model.pkl", version=Version(None, first[0])
        )
        pinned_save.save({"epoch": 3})
    with open(tmp_path / "06_models/trained_model.pkl" / first[0] / "trained_model.pkl", "rb") as f:
        assert pickle.load(f) == {"epoch": 1}


def test_other_protocols_fall_back_to_the_parent_save():
    dataset = AtomicJSONDataset(filepath="memory://crossrec-test/report.json")
    dataset.save({"ok": True})
    assert dataset.load() == {"ok": True}


def test_every_file_artifact_in_the_catalog_is_atomic():
    plain = {"PickleDataset", "ParquetDataset", "JSONDataset", "CSVDataset", "YAMLDataset"}
    checked = 0
    for path in sorted((PROJECT_ROOT / "conf/base").glob("catalog_*.yml")):
        for name, entry in yaml.safe_load(path.read_text()).items():
            kind = str(entry.get("type", "")) if isinstance(entry, dict) else ""
            if kind.split(".")[-1] in plain and not kind.startswith("plotly."):
                pytest.fail(
                    f"{path.name}: '{name}' is {kind}, not a crossrec.datasets.atomic class"
                )
            checked += kind.startswith("crossrec.datasets.atomic.")
    assert checked >= 15
