"""A user vector for someone the model never trained on, from the items they liked, without
retraining: the catalogue's item vectors stay fixed and only one d-dimensional vector is fit.

``mean``: the mean of the liked items' vectors (instant). ``solve``: maximise the softmax
likelihood of the liked items over the whole catalogue (the sampled-softmax objective the model
is trained with, here exact) with an L2 penalty, by a few LBFGS steps from the mean.
"""

from __future__ import annotations

import numpy as np

from crossrec.serving.config import FoldInConfig


def fold_in(
    item_vectors: np.ndarray, liked: np.ndarray, config: FoldInConfig, bias_column: bool = False
) -> np.ndarray:
    """(d,) user vector from the liked item indices (at least one). ``bias_column``: the
    vectors' last column is the items' bias (model.id_bias / content_bias), which a user's
    vector weighs by a fixed 1, as the trained users' vectors do."""
    liked = np.unique(np.asarray(liked, dtype=np.int64))[: config.max_liked]
    free = item_vectors.shape[1] - int(bias_column)
    start = item_vectors[liked, :free].mean(axis=0)
    ones = np.ones(item_vectors.shape[1] - free, np.float32)
    if config.method == "mean":
        return np.concatenate([start, ones]).astype(np.float32)
    import torch

    items = torch.from_numpy(np.ascontiguousarray(item_vectors, np.float32))
    target = torch.from_numpy(liked)
    user = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    fixed = torch.from_numpy(ones)
    optimizer = torch.optim.LBFGS(
        [user], lr=1.0, max_iter=config.steps, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        log_probs = torch.log_softmax(items @ torch.cat([user, fixed]), dim=0)
        loss = -log_probs[target].mean() + config.l2 * user.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    out = user.detach().numpy().astype(np.float32)
    out = out if np.isfinite(out).all() else start.astype(np.float32)
    return np.concatenate([out, ones]).astype(np.float32)


def fold_in_agreement(
    catalogue,
    users: np.ndarray,
    history: list[np.ndarray],
    truth: list[np.ndarray],
    config: FoldInConfig,
    k: int = 20,
) -> dict[str, float]:
    """How close fold-in gets to the trained user vectors: mean cosine between folded and
    trained vectors, overlap of their top-k lists, and recall@k on held-out items of each."""
    cosines, overlaps, recall_trained, recall_folded = [], [], [], []
    for user, liked, held in zip(users, history, truth, strict=True):
        if not len(liked) or not len(held):
            continue
        folded = fold_in(catalogue.item_vectors, liked, config, catalogue.bias_column)
        trained = catalogue.user_vectors[user]
        cosines.append(
            float(folded @ trained / max(np.linalg.norm(folded) * np.linalg.norm(trained), 1e-12))
        )
        _, lists = catalogue.top_items(np.stack([trained, folded]), k, [liked, liked])
        overlaps.append(len(np.intersect1d(lists[0], lists[1])) / k)
        recall_trained.append(len(np.intersect1d(lists[0], held)) / len(held))
        recall_folded.append(len(np.intersect1d(lists[1], held)) / len(held))
    return {
        "users": len(cosines),
        "cosine_to_trained": float(np.mean(cosines)) if cosines else 0.0,
        f"top{k}_overlap": float(np.mean(overlaps)) if overlaps else 0.0,
        f"recall@{k}_trained": float(np.mean(recall_trained)) if cosines else 0.0,
        f"recall@{k}_folded": float(np.mean(recall_folded)) if cosines else 0.0,
    }
