"""The ``words`` protocol: requests in words (``word_requests``), ranked over the full
catalogue with the same masks as every other evaluation (train items, and valid items on
test), by history only, words only (BM25, frozen dense, query tower) and words + history
(frozen and fine-tuned encoder), and with the history hidden (a new user who only speaks).

One request = one (user, words) of a split; its relevant items are the held-out items of that
split the words were said about. Blend weights are chosen on the valid requests. Per-request
values are averaged over seeds and compared with a paired Wilcoxon test.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.evaluation.protocol import EvalSplit
from crossrec.evaluation.significance import paired_test
from crossrec.words.blend import choose_weights, mix, standardize
from crossrec.words.config import WordsConfig
from crossrec.words.requests import encode_each_once, grouped_requests, training_pairs

logger = logging.getLogger(__name__)

#: Variants of the block, in report order (``metrics.json: words``).
VARIANTS = (
    "history_only",
    "bm25",
    "dense_frozen",
    "tower_frozen",
    "words_history_frozen",
    "dense_finetuned",
    "words_history_finetuned",
    "mostpop_no_history",
    "words_only_no_history",
)
#: (variant, baseline) pairs tested.
COMPARISONS = (
    ("words_history_frozen", "history_only"),
    ("words_history_frozen", "bm25"),
    ("words_history_frozen", "dense_frozen"),
    ("words_history_finetuned", "words_history_frozen"),
    ("dense_finetuned", "dense_frozen"),
    ("words_only_no_history", "mostpop_no_history"),
)


@dataclass
class RequestSet:
    """Requests of one split: who asked, in which words, and which items were chosen."""

    users: np.ndarray  # (n,)
    texts: list[str]
    targets: list[np.ndarray]  # relevant item indices per request
    exclude: sp.csr_matrix  # (n, n_items): the user's known items

    def __len__(self) -> int:
        return len(self.users)

    def truth(self, n_items: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(len(self.targets)), [len(t) for t in self.targets])
        cols = np.concatenate(self.targets) if self.targets else np.zeros(0, np.int64)
        return sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(self.targets), n_items)
        )

    def exclude_dense(self) -> np.ndarray:
        return self.exclude.toarray().astype(bool)


def request_set(requests: pd.DataFrame, split: EvalSplit, name: str) -> RequestSet:
    """A split's requests grouped by (user, words); train (and, on test, valid) items masked."""
    users, texts, targets = grouped_requests(requests, name)
    known = split.train if name == "valid" else (split.train + split.valid).tocsr()
    return RequestSet(users, texts, targets, known[users])


def model_vectors(bundle: dict, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """(user vectors, item vectors) of a trained model: ``users @ items.T`` = its scores."""
    from crossrec.models.bundle import load_recommender

    model = load_recommender(bundle, data)
    model.eval()
    users, items = model.scoring_vectors()
    return users.numpy(), items.numpy()


def per_request_metrics(
    scores: np.ndarray, requests: RequestSet, split: EvalSplit, exclude: bool, k: int
) -> dict[str, np.ndarray]:
    """Recall@k and NDCG@k per request with the protocol's ranking code and tie order."""
    import torch

    from crossrec.metrics.ranking import rank_and_evaluate

    n_items = scores.shape[1]
    mask = requests.exclude if exclude else sp.csr_matrix((len(requests), n_items))
    finite = np.where(np.isfinite(scores), scores, np.float32(-1e30)).astype(np.float32)

    def score(rows: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(finite[rows.numpy()])

    evaluated, metrics, _ = rank_and_evaluate(
        score, requests.truth(n_items), mask, ks=(k,), tie_order=split.tie_order
    )
    if len(evaluated) != len(requests):
        raise ValueError("a words request has no relevant item left after masking")
    return {name: values for name, values in metrics.items() if name.endswith(f"@{k}")}


def _popularity(split: EvalSplit, n: int) -> np.ndarray:
    return np.repeat(split.popularity.astype(np.float32)[None], n, axis=0)


class WordsEvaluation:
    """Every variant of the words protocol for one model seed at a time."""

    def __init__(
        self,
        requests: pd.DataFrame,
        split: EvalSplit,
        item_texts: list[str],
        config: WordsConfig,
        workdir: Path,
    ):
        from crossrec.words.encoder import words_encoder
        from crossrec.words.lexical import BM25Index

        self.split, self.config = split, config
        self.valid = request_set(requests, split, "valid")
        self.test = request_set(requests, split, "test")
        self.pairs = training_pairs(requests)
        self.item_texts = [t or "" for t in item_texts]
        self.workdir = Path(workdir)
        start = time.perf_counter()
        frozen = words_encoder(config.encoder, config.max_tokens, config.device)
        self.encoded = {"frozen": self._encode(frozen)}
        self.timings = {"encode_frozen_s": time.perf_counter() - start}
        start = time.perf_counter()
        bm25 = BM25Index(self.item_texts)
        self.bm25 = {"valid": bm25.scores(self.valid.texts), "test": bm25.scores(self.test.texts)}
        self.timings["bm25_s"] = time.perf_counter() - start
        if config.finetune.enabled:
            self.encoded["finetuned"] = self._encode(self._finetuned_encoder())
        logger.info(
            "words protocol: %d valid and %d test requests, %d training pairs",
            len(self.valid),
            len(self.test),
            len(self.pairs[0]),
        )

    def _finetuned_encoder(self):
        from crossrec.words.encoder import finetune_words_encoder, words_encoder

        start = time.perf_counter()
        words, items = self.pairs
        folder = finetune_words_encoder(
            self.config.encoder,
            words,
            [self.item_texts[i] for i in items],
            items,
            self.workdir,
            self.config.finetune,
            seed=0,
            device=self.config.device,
        )
        self.timings["finetune_encoder_s"] = time.perf_counter() - start
        return words_encoder(str(folder), self.config.max_tokens, self.config.device)

    def _encode(self, encoder) -> dict[str, np.ndarray]:
        return {
            "items": encoder.encode(self.item_texts),
            "train": encode_each_once(encoder, self.pairs[0]),
            "valid": encode_each_once(encoder, self.valid.texts),
            "test": encode_each_once(encoder, self.test.texts),
        }

    def _signals(self, kind: str, items: np.ndarray, seed: int):
        """Raw (tower, dense) scores of one encoder for valid and test requests."""
        from crossrec.words.tower import tower_scores, train_query_tower

        enc = self.encoded[kind]
        tower = train_query_tower(enc["train"], self.pairs[1], items, self.config.tower, seed)
        out = {}
        for split_name in ("valid", "test"):
            out[split_name] = {
                "tower": tower_scores(tower, enc[split_name], items),
                "dense": enc[split_name] @ enc["items"].T,
            }
        return out

    def run_seed(self, users: np.ndarray, items: np.ndarray, seed: int) -> dict[str, Any]:
        """Per-request metrics of every variant for one model seed, and the chosen weights."""
        k, step = self.config.k, self.config.blend_step
        sets = {"valid": self.valid, "test": self.test}
        excl = {s: r.exclude_dense() for s, r in sets.items()}
        history = {s: users[r.users] @ items.T for s, r in sets.items()}
        z = {s: {"history": standardize(history[s], excl[s])} for s in sets}
        z_open: dict[str, dict[str, np.ndarray]] = {s: {} for s in sets}
        encoders = list(self.encoded)
        for kind in encoders:
            raw = self._signals(kind, items, seed)
            for s in sets:
                for signal in ("tower", "dense"):
                    z[s][f"{signal}_{kind}"] = standardize(raw[s][signal], excl[s])
                    z_open[s][f"{signal}_{kind}"] = standardize(raw[s][signal])
        targets = {s: r.targets for s, r in sets.items()}
        scores: dict[str, np.ndarray] = {
            "history_only": history["test"],
            "bm25": self.bm25["test"],
            "dense_frozen": z["test"]["dense_frozen"],
            "tower_frozen": z["test"]["tower_frozen"],
            "mostpop_no_history": _popularity(self.split, len(self.test)),
        }
        weights: dict[str, dict[str, float]] = {}
        for kind in encoders:
            names = ["history", f"tower_{kind}", f"dense_{kind}"]
            signals = [z["valid"][n] for n in names]
            chosen, value = choose_weights(signals, targets["valid"], k, step)
            weights[f"words_history_{kind}"] = dict(zip(names, chosen, strict=True))
            scores[f"words_history_{kind}"] = mix([z["test"][n] for n in names], chosen)
            logger.info(
                "words + history (%s encoder), seed %d: weights %s (valid R@%d %.4f)",
                kind,
                seed,
                dict(zip(names, chosen, strict=True)),
                k,
                value,
            )
        if "finetuned" in self.encoded:
            scores["dense_finetuned"] = z["test"]["dense_finetuned"]
        # a new user who only speaks: the fine-tuned encoder when there is one
        kind = "finetuned" if "finetuned" in self.encoded else "frozen"
        names = [f"tower_{kind}", f"dense_{kind}"]
        chosen, _ = choose_weights([z_open["valid"][n] for n in names], targets["valid"], k, step)
        weights["words_only_no_history"] = dict(zip(names, chosen, strict=True))
        scores["words_only_no_history"] = mix([z_open["test"][n] for n in names], chosen)
        no_history = {"mostpop_no_history", "words_only_no_history"}
        metrics = {
            name: per_request_metrics(s, self.test, self.split, name not in no_history, k)
            for name, s in scores.items()
        }
        return {"metrics": metrics, "weights": weights}


def seed_std(values: np.ndarray) -> float:
    """Sample std over seeds of the per-seed means ((seeds, requests) values); 0 for one seed."""
    means = values.mean(axis=1)
    return float(means.std(ddof=1)) if len(means) > 1 else 0.0


def summarize_words(
    runs: list[dict[str, Any]], seeds: list[int], info: dict, cold: np.ndarray | None = None
) -> dict[str, Any]:
    """The ``words`` block of metrics.json: mean and std over seeds, paired tests; with
    ``cold`` (bool per test request: it asks for cold-start items), the same means on those
    requests under ``cold_item_requests``."""
    k_names = sorted(runs[0]["metrics"]["history_only"])
    block: dict[str, Any] = {**info, "seeds": list(seeds)}
    per_request: dict[str, dict[str, np.ndarray]] = {}
    for variant in VARIANTS:
        if variant not in runs[0]["metrics"]:
            continue
        values = {m: np.stack([r["metrics"][variant][m] for r in runs]) for m in k_names}
        per_request[variant] = {m: v.mean(axis=0) for m, v in values.items()}
        block[variant] = {m: float(v.mean()) for m, v in values.items()}
        block[variant].update({f"{m}_std": seed_std(v) for m, v in values.items()})
    tests = {}
    for a, b in COMPARISONS:
        if a in per_request and b in per_request:
            tests[f"{a} vs {b}"] = {
                m: paired_test(per_request[a][m], per_request[b][m], m).as_dict() for m in k_names
            }
    block["significance"] = tests
    block["weights"] = [r["weights"] for r in runs]
    if cold is not None and cold.any():
        block["cold_item_requests"] = {"requests": int(cold.sum())} | {
            variant: {m: float(v[cold].mean()) for m, v in values.items()}
            for variant, values in per_request.items()
        }
    return block


def evaluate_words(
    requests: pd.DataFrame,
    split: EvalSplit,
    item_texts: list[str] | None,
    model_vectors_per_seed: list[tuple[np.ndarray, np.ndarray]],
    seeds: list[int],
    config: WordsConfig,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The ``words`` block, or ``{}`` when the dataset has no valid / test requests or no
    item text (words are matched against the item text)."""
    if not config.enabled or requests is None or requests.empty:
        return {}
    if not item_texts or not any(item_texts):
        logger.info("words protocol skipped: the items have no text to match words against")
        return {}
    held = requests["split"].value_counts()
    if not held.get("valid", 0) or not held.get("test", 0):
        logger.info("words protocol skipped: no valid or no test requests (%s)", held.to_dict())
        return {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crossrec-words-") as scratch:
        folder = workdir or (Path(config.finetune.save_to) if config.finetune.save_to else None)
        evaluation = WordsEvaluation(requests, split, item_texts, config, folder or Path(scratch))
        runs = []
        for (users, items), seed in zip(model_vectors_per_seed, seeds, strict=True):
            runs.append(evaluation.run_seed(users, items, seed))
    info = {
        "encoder": config.encoder,
        "requests": {"valid": len(evaluation.valid), "test": len(evaluation.test)},
        "training_pairs": len(evaluation.pairs[0]),
        "k": config.k,
        "timings": {**evaluation.timings, "total_s": time.perf_counter() - start},
    }
    cold = np.array([split.is_cold[t].all() for t in evaluation.test.targets], dtype=bool)
    block = summarize_words(runs, seeds, info, cold)
    logger.info(
        "words: test recall@%d history only %.4f, words + history %.4f (frozen)%s",
        config.k,
        block["history_only"][f"recall@{config.k}"],
        block["words_history_frozen"][f"recall@{config.k}"],
        ""
        if "words_history_finetuned" not in block
        else f", {block['words_history_finetuned'][f'recall@{config.k}']:.4f} (fine-tuned)",
    )
    return block
