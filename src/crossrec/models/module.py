"""``LightningModule``: training step (sampled ranking loss) and full-ranking validation.

Validation scores every user with a validation item against ALL items, train items masked,
through :func:`crossrec.metrics.ranking.evaluate_ranking` (the code ``evaluate`` uses), and
logs ``val/<metric>@<k>`` (e.g. ``val/recall@20``) so EarlyStopping, ModelCheckpoint and
Optuna's pruning callback can monitor it. Under DDP each rank ranks a disjoint share of the
users and the per-user sums are all-reduced: every user counts once and the logged value is
the single-process one. The per-epoch history and the run's config travel in checkpoints, so a
resumed run keeps its earlier epochs and can be checked against the config it continues.
"""

from __future__ import annotations

import logging
import time

import lightning.pytorch as pl
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from crossrec.metrics.ranking import evaluate_ranking, mean_metrics
from crossrec.models.config import FinetuneConfig
from crossrec.models.losses import ranking_loss
from crossrec.models.recommender import Recommender

log = logging.getLogger(__name__)


class RecommenderModule(pl.LightningModule):
    """Trains a :class:`Recommender`; ``self.history`` has one dict per validated epoch."""

    def __init__(
        self, model: Recommender, config: FinetuneConfig, train: sp.csr_matrix, valid: sp.csr_matrix
    ):
        super().__init__()
        self.model = model
        self.config = config
        self.train_csr = sp.csr_matrix(train)
        self.valid_csr = sample_rows(sp.csr_matrix(valid), config.trainer.val_max_users)
        self.history: list[dict] = []
        counts = np.asarray(self.train_csr.sum(axis=0)).ravel().astype(np.float64) + 1.0
        popularity = torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32)
        self.register_buffer("log_popularity", popularity, persistent=False)
        data = config.data
        if data.sampler == "popularity":
            weights = counts**data.popularity_alpha  # as NegativeSampler draws them
            sampling = np.log(weights / weights.sum())
        else:
            sampling = np.full(len(counts), -np.log(len(counts)))
        self.register_buffer(
            "log_sampling", torch.as_tensor(sampling, dtype=torch.float32), persistent=False
        )
        self._loss_sum = 0.0
        self._loss_count = 0
        self._epoch_start = time.perf_counter()

    # ---------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_count = 0.0, 0
        self._epoch_start = time.perf_counter()

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Ranking loss of one batch plus the L2 penalty on its ego embeddings."""
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        loss_cfg = self.config.loss
        emb = self.model.embeddings()
        u = emb.users.index_select(0, users)
        # positives and negatives in one call: late (LLM) content encodes each item once
        both = self.model.item_vectors(emb, torch.cat([pos.unsqueeze(1), neg], dim=1))
        p, n = both[:, 0], both[:, 1:]
        if loss_cfg.kind == "softmax" and loss_cfg.cosine:
            u, p, n = F.normalize(u, dim=-1), F.normalize(p, dim=-1), F.normalize(n, dim=-1)
        pos_scores = (u * p).sum(-1)
        neg_scores = torch.einsum("bd,bkd->bk", u, n)
        valid = batch.get("neg_valid", torch.ones_like(neg_scores, dtype=torch.bool))
        in_batch = self.config.data.in_batch_negatives and len(users) > 1
        if in_batch:
            not_own = pos.unsqueeze(0) != pos.unsqueeze(1)
            neg_scores = torch.cat([neg_scores, u @ p.T], dim=1)
            valid = torch.cat([valid, not_own], dim=1)
        if loss_cfg.kind == "softmax" and loss_cfg.logq_correction:
            pos_scores, neg_scores = self._logq_corrected(
                pos, neg, pos_scores, neg_scores, in_batch
            )
        loss = ranking_loss(loss_cfg.kind, pos_scores, neg_scores, valid, loss_cfg.temperature)
        if loss_cfg.reg_weight > 0:
            id_bias = self.model.id_bias
            bias = id_bias.weight.squeeze(1) if id_bias is not None else None
            items_ego = self.model.penalised_item_rows(emb.items_ego)
            loss = loss + loss_cfg.reg_weight * self._ego_penalty(
                emb.users_ego, items_ego, users, pos, neg, bias
            )
        if loss_cfg.content_weight > 0 and neg.numel():
            content = self._content_loss(u, pos, neg)
            if content is not None:
                loss = loss + loss_cfg.content_weight * content
        return loss

    def _content_loss(self, u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor):
        """FREEDOM's content term: the ranking loss of the users' final vectors against the
        items' projected content alone (sampled negatives only); None without content."""
        loss_cfg = self.config.loss
        table = self.model.content_table()
        if table is None:
            return None
        p = table.index_select(0, pos)
        n = table.index_select(0, neg.reshape(-1)).view(*neg.shape, -1)
        u = u[:, : table.shape[1]]  # without the bias column (model.id_bias / content_bias)
        if loss_cfg.kind == "softmax" and loss_cfg.cosine:
            p, n = F.normalize(p, dim=-1), F.normalize(n, dim=-1)
        pos_scores, neg_scores = (u * p).sum(-1), torch.einsum("bd,bkd->bk", u, n)
        if loss_cfg.kind == "softmax" and loss_cfg.logq_correction:
            pos_scores, neg_scores = self._logq_corrected(pos, neg, pos_scores, neg_scores, False)
        valid = torch.ones_like(neg_scores, dtype=torch.bool)
        return ranking_loss(loss_cfg.kind, pos_scores, neg_scores, valid, loss_cfg.temperature)

    @staticmethod
    def _ego_penalty(
        users_ego: torch.Tensor,
        items_ego: torch.Tensor,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        item_bias: torch.Tensor | None = None,
    ):
        """L2 of the batch's ego embeddings: sum over users, positives and negatives (divided by
        the negatives per example) of ||ego||^2, over 2 * batch size. An item's ID bias
        (model.id_bias) is part of its ego row, as in VBPR.

        Computed as occurrence counts times per-row squared norms: the same sum as gathering the
        rows, without a (batch x negatives) gather whose backward dominated a CPU step.
        """
        user_norms = users_ego.pow(2).sum(1)
        item_norms = items_ego.pow(2).sum(1)
        if item_bias is not None:
            item_norms = item_norms + item_bias.pow(2)
        item_counts = torch.bincount(pos, minlength=len(item_norms)).to(item_norms.dtype)
        if neg.numel():
            neg_counts = torch.bincount(neg.reshape(-1), minlength=len(item_norms))
            item_counts = item_counts + neg_counts.to(item_norms.dtype) / neg.shape[1]
        user_counts = torch.bincount(users, minlength=len(user_norms)).to(user_norms.dtype)
        reg = (user_counts * user_norms).sum() + (item_counts * item_norms).sum()
        return reg / (2 * len(users))

    def _logq_corrected(self, pos, neg, pos_scores, neg_scores, in_batch: bool):
        """Scores minus T * log(expected count in the sample) of each candidate.

        In-batch candidates (and the positive, when there are in-batch negatives) appear about
        batch_size * popularity times; sampled negatives num_negatives * their sampling
        probability (uniform or popularity ** alpha, as the DataModule draws them).
        """
        temperature = self.config.loss.temperature
        batch = len(pos)
        parts = [self.log_sampling[neg] + float(np.log(max(self.config.data.num_negatives, 1)))]
        pos_corr = torch.zeros_like(pos_scores)
        if in_batch:
            pos_corr = self.log_popularity[pos] + float(np.log(batch))
            parts.append(pos_corr.unsqueeze(0).expand(batch, -1))
        correction = torch.cat(parts, dim=1)
        return pos_scores - temperature * pos_corr, neg_scores - temperature * correction

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.batch_loss(batch)
        self._loss_sum += float(loss.detach())
        self._loss_count += 1
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,  # the epoch mean over all ranks' batches (a no-op on one process)
            batch_size=len(batch["users"]),
        )
        return loss

    # ---------------------------------------------------------------- validation
    def validation_metrics(self) -> dict[str, float]:
        """Mean full-ranking metrics on the validation split (train items masked).

        Each of the ``world_size`` ranks evaluates every ``world_size``-th validation user;
        the per-metric sums and the user count are summed over ranks before dividing.
        """
        rank, world = self._rank_and_world()
        truth = rank_share(self.valid_csr, rank, world)
        _, per_user = evaluate_ranking(
            self.model.score_users,
            truth,
            self.train_csr,
            ks=self.config.trainer.val_ks,
            device=self.device,
        )
        if world == 1:  # exactly what evaluate's mean_metrics gives
            return {f"val/{name}": value for name, value in mean_metrics(per_user).items()}
        names = sorted(per_user)
        local = [float(np.sum(per_user[name])) for name in names]
        local.append(float(len(per_user[names[0]])))
        totals = torch.tensor(local, dtype=torch.float64, device=self.device)
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum").cpu().tolist()
        count = totals[-1]
        return {
            f"val/{name}": (total / count if count else 0.0)
            for name, total in zip(names, totals[:-1], strict=True)
        }

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self._trainer  # None outside fit (a bare module validates alone)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def validation_step(self, batch, batch_idx: int) -> None:
        if batch_idx > 0:
            return
        metrics = self.validation_metrics()
        monitor = self.config.trainer.monitor
        for name, value in metrics.items():
            self.log(
                name, value, on_epoch=True, sync_dist=True, batch_size=1, prog_bar=name == monitor
            )
        if self.trainer.sanity_checking:
            return
        record = {
            "epoch": int(self.current_epoch),
            "step": int(self.global_step),
            "train_loss": self._loss_sum / self._loss_count if self._loss_count else float("nan"),
            **metrics,
            "epoch_time_s": time.perf_counter() - self._epoch_start,
        }
        self.history.append(record)
        if self.trainer.is_global_zero:
            log.info(
                "epoch %d: train_loss %.4f  %s %.4f  (%.1fs)",
                record["epoch"],
                record["train_loss"],
                monitor,
                metrics.get(monitor, float("nan")),
                record["epoch_time_s"],
            )

    # ---------------------------------------------------------------- optimiser
    def configure_optimizers(self):
        optim = self.config.optim
        llm_params = self.model.llm_parameters()
        scaled = optim.content_lr_scale != 1.0
        content_params = self.model.content_parameters() if scaled else []
        own = {id(p) for p in llm_params + content_params}
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in own]
        groups = [{"params": rest, "lr": optim.lr, "name": "recommender"}]
        if content_params:
            groups.append(
                {"params": content_params, "lr": self.group_lr("content"), "name": "content"}
            )
        if llm_params:
            groups.append({"params": llm_params, "lr": optim.llm_lr, "name": "llm"})
        cls = torch.optim.AdamW if optim.optimizer == "adamw" else torch.optim.Adam
        return cls(groups, lr=optim.lr, weight_decay=optim.weight_decay)

    def group_lr(self, name: str | None) -> float:
        """The configured learning rate of an optimizer parameter group, by its name."""
        optim = self.config.optim
        if name == "llm":
            return optim.llm_lr
        if name == "content":
            return optim.lr * optim.content_lr_scale
        return optim.lr

    def on_train_start(self) -> None:
        """Learning rates and weight decay from the config, over a resumed optimizer's state.

        Lightning restores the optimizer (its param_groups included) from the checkpoint before
        this hook: without this, a resumed run with a changed ``optim.lr`` would silently keep
        the checkpoint's. On a fresh run the groups already hold these values.
        """
        optim = self.config.optim
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.group_lr(group.get("name"))
                group["weight_decay"] = optim.weight_decay

    # ---------------------------------------------------------------- checkpoint state
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["crossrec_history"] = list(self.history)
        # what a resume compares its own config and data against (crossrec.models.resume)
        checkpoint["crossrec_config"] = self.config.model_dump(mode="json")
        checkpoint["crossrec_data"] = {
            "n_users": int(self.model.n_users),
            "n_items": int(self.model.n_items),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("crossrec_history", []))


class PatientEarlyStopping(pl.callbacks.EarlyStopping):
    """EarlyStopping whose patience is the configured one, also after a resume.

    Lightning's EarlyStopping restores ``patience`` from the checkpoint along with its counters,
    which would silently ignore a changed ``trainer.patience``.
    """

    def load_state_dict(self, state_dict: dict) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience


def sample_rows(truth: sp.csr_matrix, size: int | None, seed: int = 0) -> sp.csr_matrix:
    """``truth`` with at most ``size`` of its users that have held-out items (a seeded sample;
    ``truth`` itself when it has no more than ``size``)."""
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if size is None or len(users) <= size:
        return truth
    chosen = np.random.default_rng([seed, 13]).choice(users, size=size, replace=False)
    keep = np.zeros(truth.shape[0], dtype=np.float32)
    keep[chosen] = 1.0
    sample = sp.csr_matrix(sp.diags(keep) @ truth)
    sample.eliminate_zeros()
    log.info("validation ranks a seeded sample of %d of %d users", size, len(users))
    return sample


def rank_share(truth: sp.csr_matrix, rank: int, world: int) -> sp.csr_matrix:
    """``truth`` with only every ``world``-th user that has held-out items, from the ``rank``-th.

    The shares of all ranks are disjoint and together hold every evaluated user once.
    """
    if world == 1:
        return truth
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    keep = np.zeros(truth.shape[0], dtype=np.float32)
    keep[users[rank::world]] = 1.0
    share = sp.diags(keep) @ truth
    share = sp.csr_matrix(share)
    share.eliminate_zeros()
    return share


def history_frame(history: list[dict]):
    """Per-epoch history as a DataFrame (``epoch, train_loss, val/...``); empty -> columns only."""
    import pandas as pd

    frame = pd.DataFrame(history)
    if frame.empty:
        return pd.DataFrame(columns=["epoch", "train_loss"])
    frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    frame.columns = [c.replace("val/", "val_") for c in frame.columns]
    return frame.astype({c: np.float64 for c in frame.columns if c not in ("epoch", "step")})
