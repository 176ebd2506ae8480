"""BM25 over the item text: the lexical words-only baseline (Robertson & Zaragoza's Okapi
BM25 as implemented by ``bm25s``, chosen over ``rank_bm25`` for speed:
``benchmarks/bm25_libraries.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class BM25Index:
    """The item texts indexed once; ``scores(queries)`` -> ``(len(queries), n_items)``."""

    def __init__(self, item_texts: Sequence[str], k1: float = 1.5, b: float = 0.75):
        import bm25s

        self.n_items = len(item_texts)
        self._retriever = bm25s.BM25(k1=k1, b=b)
        corpus = [t if t else "" for t in item_texts]
        self._retriever.index(
            bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
        )

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        import bm25s

        out = np.zeros((len(queries), self.n_items), dtype=np.float32)
        tokens = bm25s.tokenize(list(queries), stopwords="en", return_ids=False,
                                show_progress=False)
        for row, words in enumerate(tokens):
            if words:
                out[row] = self._retriever.get_scores(words)
        return out
