"""BM25 libraries side by side on a dataset's requests in words: ``bm25s`` (sparse matrices)
and ``rank_bm25`` (pure Python), the two maintained candidates for the lexical baseline.

    .venv/bin/python benchmarks/bm25_libraries.py                          # Last.fm tags
    .venv/bin/python benchmarks/bm25_libraries.py --dataset movielens100k_multimodal

Both index the same item texts (the ``item_texts`` crossrec encodes: rendered by featurize's
template) and score every item for every valid + test request. Printed per library: index
time, scoring time, requests per second, and how often its top-20 matches the other's
(their IDF variants differ slightly), plus both libraries' hit rate at 20 on the test requests.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load(dataset: str):
    from crossrec.data.ingest import ingest_in_memory
    from crossrec.encoders.config import parse_featurize_params
    from crossrec.encoders.modalities import item_texts

    conf = ROOT / "conf" / "base"
    ingest = yaml.safe_load((conf / "parameters_ingest.yml").read_text())["ingest"]
    ingest["raw_root"] = os.environ.get("CROSSREC_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    ingest["media"] = {"check": False}
    out = ingest_in_memory(ingest, dataset, seed=0)
    featurize = yaml.safe_load((conf / "parameters_featurize_modalities.yml").read_text())
    texts = item_texts(
        out["items"], out["dataset_info"], parse_featurize_params(featurize["featurize_modalities"])
    )
    requests = out["word_requests"]
    return texts, requests[requests["split"].isin(["valid", "test"])]


def tokenize(text: str) -> list[str]:
    import re

    return re.findall(r"\w\w+", text.lower())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="lastfm2k_multimodal")
    parser.add_argument("--max-requests", type=int, default=3000)
    args = parser.parse_args()
    texts, requests = load(args.dataset)
    requests = requests.sample(min(args.max_requests, len(requests)), random_state=0)
    queries = requests["text"].tolist()
    targets = requests["item_idx"].to_numpy()
    rows = []

    start = time.perf_counter()
    from crossrec.words.lexical import BM25Index

    index = BM25Index(texts)
    built = time.perf_counter() - start
    start = time.perf_counter()
    ours = index.scores(queries)
    scored = time.perf_counter() - start
    rows.append(("bm25s", built, scored, ours))

    from rank_bm25 import BM25Okapi

    start = time.perf_counter()
    okapi = BM25Okapi([tokenize(t) or [""] for t in texts])
    built = time.perf_counter() - start
    start = time.perf_counter()
    theirs = np.stack([okapi.get_scores(tokenize(q)) for q in queries]).astype(np.float32)
    scored = time.perf_counter() - start
    rows.append(("rank_bm25", built, scored, theirs))

    top = {name: np.argsort(-s, axis=1, kind="stable")[:, :20] for name, _, _, s in rows}
    overlap = np.mean(
        [
            len(np.intersect1d(a, b)) / 20
            for a, b in zip(top["bm25s"], top["rank_bm25"], strict=True)
        ]
    )
    print(f"{args.dataset}: {len(texts)} items, {len(queries)} requests (valid + test)")
    print(f"{'library':<10} {'index (s)':>10} {'score (s)':>10} {'req/s':>9} {'hit@20':>8}")
    for name, built, scored, _ in rows:
        hits = np.mean([t in row for t, row in zip(targets, top[name], strict=True)])
        rate = len(queries) / scored
        print(f"{name:<10} {built:>10.3f} {scored:>10.3f} {rate:>9.0f} {hits:>8.4f}")
    speed = rows[1][2] / rows[0][2]
    print(f"top-20 overlap {overlap:.3f}; bm25s scores {speed:.1f}x faster than rank_bm25")


if __name__ == "__main__":
    main()
