"""Custom Kedro datasets for crossrec's catalog (the only Kedro-aware code outside pipelines/).

- :mod:`crossrec.datasets.atomic`: pickle / parquet / JSON / CSV datasets whose local saves are
  atomic (temp file + rename), so a run killed mid-save never leaves a truncated artifact.
- :mod:`crossrec.datasets.embedding_cache`: the catalog entry that hands the encoders an
  :class:`crossrec.encoders.cache.EmbeddingStore`.

Submodules are imported by the catalog on demand; nothing heavy is imported here.
"""
