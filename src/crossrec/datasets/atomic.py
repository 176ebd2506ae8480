"""Atomic-save variants of kedro-datasets' pickle, parquet, JSON, CSV and YAML datasets.

Why: kedro-datasets opens the final path and writes into it, so a run killed mid-save (OOM,
Ctrl-C, pre-emption) leaves a truncated file; for a versioned dataset that truncated file is
the *newest* version, and every later load picks it and fails. Here a local save writes to a
hidden temp file in the same folder (same filesystem, so the rename is atomic), flushes it to
disk and ``os.replace``-s it over the target: readers see the previous file or the complete new
one, never a partial one, and a failed save removes its temp file. Versioning is untouched: the
target is whatever the parent's ``_get_save_path`` picks (plain path or ``<path>/<version>/``).

Only the local ``file`` protocol is atomic; other protocols (s3, gcs, ...) and append modes fall
back to the parent's behaviour. A load that fails on an unreadable file (e.g. a version
truncated by a non-atomic writer) names that file and says to delete it.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import DatasetError, VersionNotFoundError, get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from kedro_datasets.pickle import PickleDataset
from kedro_datasets.yaml import YAMLDataset

logger = logging.getLogger(__name__)

#: A temp file untouched this long belongs to a killed save, not to one still writing (a live
#: save keeps moving its temp file's modification time).
STALE_AFTER_S = 15 * 60


def _unwrapped(method: Any) -> Any:
    """A bound dataset method without Kedro's logging/versioning wrapper.

    The wrapper of a versioned dataset resolves a fresh save version on every call, so calling
    the parent's *wrapped* save from inside ours would save under another timestamp.
    """
    raw = getattr(method, "__wrapped__", None)
    return method if raw is None else raw.__get__(method.__self__)


def temp_path_for(target: PurePosixPath) -> PurePosixPath:
    """A unique hidden name next to ``target`` (same folder, so ``os.replace`` is atomic)."""
    return target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"


def stale_temp_files(target: Path, versioned: bool, now: float | None = None) -> list[Path]:
    """Temp files of ``target`` left by killed saves: next to it, or (versioned) in any
    version folder of the same dataset."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.[0-9a-f]{{12}}\.tmp$")
    folders = [target.parent]
    if versioned and target.parent.parent.is_dir():
        folders = [f for f in target.parent.parent.iterdir() if f.is_dir()]
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    stale = []
    for folder in folders:
        for path in folder.glob(f".{target.name}.*.tmp") if folder.is_dir() else []:
            try:
                if pattern.match(path.name) and path.stat().st_mtime < cutoff:
                    stale.append(path)
            except FileNotFoundError:  # removed meanwhile by another writer
                continue
    return stale


def remove_stale_temp_files(target: Path, versioned: bool) -> None:
    """Delete what killed saves left behind (and their then-empty version folders)."""
    stale = stale_temp_files(target, versioned)
    for path in stale:
        path.unlink(missing_ok=True)
        if versioned and path.parent != target.parent:
            _remove_if_empty(path.parent)
    if stale:
        logger.info("removed %d temp files of interrupted saves of %s", len(stale), target.name)


def _fsync(path: str) -> None:
    """Flush the written bytes so the rename never publishes a file whose data is not on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (another writer) or already gone
        pass


class AtomicSaveMixin:
    """Put before a kedro-datasets file dataset in the bases: atomic local saves, clear loads."""

    _atomic_target: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        # While an atomic save runs, the parent's save writes to the temp file instead.
        if self._atomic_target is not None:
            return self._atomic_target
        return super()._get_save_path()  # type: ignore[misc]

    def _atomic_supported(self) -> bool:
        mode = str(getattr(self, "_fs_open_args_save", {}).get("mode", "wb"))
        return getattr(self, "_protocol", None) == "file" and "a" not in mode

    def save(self, data: Any) -> None:
        parent_save = _unwrapped(super().save)  # type: ignore[misc]
        if not self._atomic_supported():
            parent_save(data)
            return
        final = self._get_save_path()  # versioned: checks that this version does not exist
        final_str = get_filepath_str(final, self._protocol)  # type: ignore[attr-defined]
        if Path(final_str).is_dir():  # let the parent raise its own clear error
            parent_save(data)
            return
        remove_stale_temp_files(Path(final_str), versioned=bool(getattr(self, "_version", None)))
        tmp = temp_path_for(final)
        tmp_str = get_filepath_str(tmp, self._protocol)  # type: ignore[attr-defined]
        folder = Path(tmp_str).parent
        new_folder = not folder.exists()  # a fresh version folder: removed again on failure
        self._atomic_target = tmp
        try:
            parent_save(data)
            _fsync(tmp_str)
            os.replace(tmp_str, final_str)
        except BaseException:
            Path(tmp_str).unlink(missing_ok=True)
            if new_folder:
                _remove_if_empty(folder)
            raise
        finally:
            self._atomic_target = None
        self._invalidate_cache()  # type: ignore[attr-defined]

    def load(self) -> Any:
        parent_load = _unwrapped(super().load)  # type: ignore[misc]
        try:
            return parent_load()
        except (DatasetError, FileNotFoundError):  # missing file / version: Kedro says it well
            raise
        except Exception as error:
            raise DatasetError(unreadable_message(self, error)) from error


def unreadable_message(dataset: Any, error: Exception) -> str:
    """Which file failed to load, why, and what to do about a truncated one."""
    try:
        path = get_filepath_str(dataset._get_load_path(), dataset._protocol)
    except (DatasetError, VersionNotFoundError):
        path = get_filepath_str(dataset._filepath, dataset._protocol)
    versioned = bool(getattr(dataset, "_version", None))
    fallback = (
        f"delete its version folder '{Path(path).parent}' so the previous version loads "
        "(or pin another one with `kedro run --load-versions`)"
        if versioned
        else "delete it and re-run the pipeline that produces it"
    )
    return (
        f"Cannot read '{path}' ({type(error).__name__}: {error}). If it was truncated by a run "
        f"killed while saving (artifacts written before atomic saves), {fallback}."
    )


class AtomicPickleDataset(AtomicSaveMixin, PickleDataset):
    """``pickle.PickleDataset`` with atomic local saves."""


class AtomicParquetDataset(AtomicSaveMixin, ParquetDataset):
    """``pandas.ParquetDataset`` with atomic local saves."""


class AtomicJSONDataset(AtomicSaveMixin, JSONDataset):
    """``json.JSONDataset`` with atomic local saves."""


class OptionalJSONDataset(AtomicJSONDataset):
    """``AtomicJSONDataset`` whose load gives None when the file does not exist: for results a
    separate script writes (``benchmarks/llm_before_after.py``), which a report shows if present.
    """

    def _exists(self) -> bool:
        return Path(get_filepath_str(self._get_load_path(), self._protocol)).exists()

    def load(self) -> Any:
        return super().load() if self._exists() else None


class AtomicCSVDataset(AtomicSaveMixin, CSVDataset):
    """``pandas.CSVDataset`` with atomic local saves."""


class OptionalCSVDataset(AtomicCSVDataset):
    """``AtomicCSVDataset`` whose load gives None when the file does not exist: for inputs a
    user may provide (``word_queries`` of the recommend pipeline)."""

    def _exists(self) -> bool:
        return Path(get_filepath_str(self._get_load_path(), self._protocol)).exists()

    def load(self) -> Any:
        return super().load() if self._exists() else None


class AtomicYAMLDataset(AtomicSaveMixin, YAMLDataset):
    """``yaml.YAMLDataset`` with atomic local saves (``tune`` writes conf/tuned/ with it)."""


class KeepLatestPickleDataset(AtomicPickleDataset):
    """``AtomicPickleDataset`` that writes no version for data marked unchanged
    (:func:`crossrec.refresh.state.unchanged`): a refresh that adds nothing leaves the newest
    version the latest instead of copying it."""

    def save(self, data: Any) -> None:
        from crossrec.refresh.state import is_unchanged

        if is_unchanged(data):
            logger.info("%s: no new version written", self._filepath)
            return
        _unwrapped(super().save)(data)
