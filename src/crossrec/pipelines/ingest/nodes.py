"""Ingest nodes: each is one step of :mod:`crossrec.data.ingest` (raw dataset -> validated,
filtered, indexed, split tables), taking ``params:ingest`` and ``params:dataset``."""

from __future__ import annotations

from crossrec.data.ingest import (
    attach_words,
    check_dataset_media,
    clean_dataset,
    describe_users,
    filter_dataset,
    index_dataset,
    ingest_in_memory,
    load_raw_dataset,
    split_dataset,
    summarize_dataset,
)

__all__ = [
    "attach_words",
    "check_dataset_media",
    "clean_dataset",
    "describe_users",
    "filter_dataset",
    "index_dataset",
    "ingest_in_memory",
    "load_raw_dataset",
    "split_dataset",
    "summarize_dataset",
]
