"""Two runs writing fuse's artifacts of one dataset at once would read each other's outputs
(fuse saves fused_item_features, then loads it back to build the graphs): the second fails
at once, naming the run that holds them."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline

from crossrec.datasets.atomic import AtomicPickleDataset
from crossrec.hooks import RunConflictError, WriterLock, is_user_error


def _identity(x):
    return x


def test_second_writer_fails_until_the_first_ends(tmp_path):
    catalog = DataCatalog(
        {"fused_item_features": AtomicPickleDataset(filepath=str(tmp_path / "ds" / "f.pkl"))}
    )
    fuse = Pipeline([Node(_identity, "item_features", "fused_item_features")])
    reader = Pipeline([Node(_identity, "fused_item_features", "model")])
    first, second = WriterLock(), WriterLock()
    first.before_pipeline_run({}, fuse, catalog)
    first.before_node_run()
    lock = tmp_path / "ds" / ".writer.lock"
    assert lock.exists()
    second.before_pipeline_run({}, fuse, catalog)
    with pytest.raises(RunConflictError, match=r"another run is writing .* \(pid \d+"):
        second.before_node_run()
    reader_run = WriterLock()
    reader_run.before_pipeline_run({}, reader, catalog)
    reader_run.before_node_run()  # readers are not held up
    first.after_pipeline_run()
    assert not lock.exists()  # a finished run leaves data/ as it found it
    second.before_pipeline_run({}, fuse, catalog)
    second.before_node_run()
    second.on_pipeline_error()
    assert not lock.exists()
    assert is_user_error(RunConflictError("x"))  # printed as a message, not a traceback


def test_a_run_refused_before_its_first_node_takes_no_lock(tmp_path):
    catalog = DataCatalog(
        {"fused_item_features": AtomicPickleDataset(filepath=str(tmp_path / "ds" / "f.pkl"))}
    )
    fuse = Pipeline([Node(_identity, "item_features", "fused_item_features")])
    WriterLock().before_pipeline_run({}, fuse, catalog)  # then a parameter check raises
    assert not (tmp_path / "ds").exists()
