"""train_recommender end to end on tiny data: fast_dev_run, learning from content, LLM wiring,
and resuming a run killed mid-epoch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models.bundle import build_recommender, load_recommender
from crossrec.models.config import FinetuneConfig
from crossrec.models.module import RecommenderModule
from crossrec.models.training import train_recommender

HERE = Path(__file__).resolve().parent


def _config(**overrides) -> FinetuneConfig:
    base = {
        # one model: the training machinery (the mix is tests/models/test_mixed.py)
        "model": {
            "embedding_dim": 16,
            "user_tower": {"kind": "mean", "history_length": 8},
            "content_mix": {"kind": "none"},
        },
        "data": {"batch_size": 32, "num_negatives": 2},
        "optim": {"lr": 0.01},
        "trainer": {"max_epochs": 2, "seed": 0, "cpu_threads": 1, "val_ks": [5, 10, 20]},
    }
    for key, value in overrides.items():
        base.setdefault(key, {}).update(value)
    return FinetuneConfig.model_validate(base)


def test_fast_dev_run_returns_loadable_bundle(tiny_data, tmp_path):
    config = _config(trainer={"fast_dev_run": True})
    result = train_recommender(tiny_data, config, run_dir=tmp_path, enable_progress_bar=False)
    assert set(result.bundle) >= {"config", "state_dict", "n_users", "n_items", "modalities"}
    assert list(result.history.columns[:2]) == ["epoch", "step"]
    assert "val_recall@20" in result.history.columns
    model = load_recommender(result.bundle, tiny_data)
    assert model.score_users(torch.tensor([0, 1])).shape == (2, tiny_data.n_items)


def _val_recall(model, data, k: int = 10) -> float:
    _, per_user = evaluate_ranking(model.score_users, data.valid, data.train, ks=[k])
    return float(per_user[f"recall@{k}"].mean())


def test_content_only_model_learns_the_content_signal(tmp_path):
    """No ID embeddings: only the content of history/candidate items can rank the held-out items."""
    sys.path.insert(0, str(HERE))
    from conftest import make_tiny_data

    data = make_tiny_data(n_users=60, n_items=120, n_clusters=6, per_user=10, seed=1)
    config = _config(
        model={
            "use_id_embedding": False,
            "propagation": {"kind": "none"},
            "fusion": {"strategy": "concat"},
        },
        loss={"kind": "softmax", "temperature": 0.2, "cosine": True, "reg_weight": 0.0},
        trainer={"max_epochs": 25, "patience": 25},
    )
    torch.manual_seed(0)
    untrained = _val_recall(build_recommender(data, config).eval(), data)
    result = train_recommender(data, config, run_dir=tmp_path, enable_progress_bar=False)
    trained = _val_recall(load_recommender(result.bundle, data), data)
    # 10 of a user's ~14 unseen same-cluster items fit in the top 10: perfect content = ~0.7
    assert trained > 0.55, (untrained, trained)
    assert trained > untrained + 0.3
    assert result.best_score >= result.history["val_recall@20"].iloc[0]
    assert result.best_score == pytest.approx(result.history["val_recall@20"].max())


class _FakeLLMEncoder(nn.Module):
    """Stands in for the LLM item encoder: a frozen 'pretrained' table + an adapter."""

    def __init__(self, n_items: int):
        super().__init__()
        self.base = nn.Embedding(n_items, 12)
        self.base.weight.requires_grad_(False)
        self.adapter = nn.Linear(12, 12)
        self.out_dim = 12

    def forward(self, item_idx: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(item_idx))

    def llm_parameters(self):
        return list(self.adapter.parameters())


def test_llm_strategy_wiring(tiny_data, monkeypatch):
    import crossrec.models.item_towers.llm_encoder as llm

    seen = {}

    def fake_builder(item_texts, item_features, config):
        seen["texts"], seen["config"] = item_texts, config
        return _FakeLLMEncoder(len(item_texts))

    monkeypatch.setattr(llm, "build_llm_item_encoder", fake_builder)
    config = _config(
        model={"fusion": {"strategy": "llm", "llm": {"mode": "lora"}}},
        optim={"lr": 0.01, "llm_lr": 0.001},
    )
    model = build_recommender(tiny_data, config)
    assert seen["texts"] == tiny_data.item_texts
    assert getattr(seen["config"], "mode", None) == "lora"
    module = RecommenderModule(model, config, tiny_data.train, tiny_data.valid)
    batch = {
        "users": torch.tensor([0, 1, 2]),
        "pos": torch.tensor([0, 1, 2]),
        "neg": torch.tensor([[3, 4], [5, 6], [7, 8]]),
    }
    module.batch_loss(batch).backward()
    encoder = model.fusion.encoder
    assert encoder.adapter.weight.grad is not None and encoder.adapter.weight.grad.abs().sum() > 0
    assert encoder.base.weight.grad is None
    groups = {g["name"]: g for g in module.configure_optimizers().param_groups}
    assert groups["llm"]["lr"] == 0.001 and groups["recommender"]["lr"] == 0.01
    assert {id(p) for p in groups["llm"]["params"]} == {id(p) for p in encoder.adapter.parameters()}
    model.eval()
    assert model.score_users(torch.tensor([0])).shape == (1, tiny_data.n_items)


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {here!r})
    import lightning.pytorch as pl
    from conftest import make_tiny_data
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    class KillMidEpoch(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash: no cleanup, no checkpoint

    config = FinetuneConfig.model_validate({config!r})
    train_recommender(make_tiny_data(), config, run_dir={run_dir!r},
                      extra_callbacks=[KillMidEpoch()], enable_progress_bar=False)
    """
)


def test_resume_after_kill_continues_from_last_checkpoint(tiny_data, tmp_path):
    import lightning.pytorch as pl

    config = _config(trainer={"max_epochs": 3, "resume": True, "patience": 10})
    script = KILLER.format(
        here=str(HERE), config=config.model_dump(mode="json"), run_dir=str(tmp_path)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.exists()
    saved = torch.load(last, map_location="cpu", weights_only=False)
    steps_per_epoch = int(np.ceil(tiny_data.train.nnz / config.data.batch_size))
    assert saved["global_step"] == steps_per_epoch and saved["epoch"] == 0

    starts = []

    class RecordStart(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            starts.append((trainer.current_epoch, trainer.global_step))

    result = train_recommender(
        tiny_data,
        config,
        run_dir=tmp_path,
        extra_callbacks=[RecordStart()],
        enable_progress_bar=False,
    )
    assert starts[0] == (1, steps_per_epoch)  # continued, not restarted
    assert [e for e, _ in starts] == [1, 2]
    assert result.history["epoch"].tolist() == [
        0,
        1,
        2,
    ]  # epoch 0's record came from the checkpoint


def test_precision_resolution():
    from crossrec.models.config import TrainerConfig
    from crossrec.models.training import resolve_precision

    assert resolve_precision(TrainerConfig(accelerator="cpu")) == "32-true"
    assert resolve_precision(TrainerConfig(precision="16-mixed")) == "16-mixed"
    expected = "32-true" if not torch.cuda.is_available() else resolve_precision(TrainerConfig())
    assert resolve_precision(TrainerConfig()) == expected


def test_bf16_mixed_step_runs_with_float32_propagation_and_scores(tiny_data, tmp_path):
    """The GPU default (bf16-mixed) exercised through CPU autocast: graph propagation and
    validation scores stay float32."""
    config = _config(
        trainer={"fast_dev_run": True, "precision": "bf16-mixed"},
        model={"fusion": {"strategy": "attention"}},
    )
    result = train_recommender(tiny_data, config, run_dir=tmp_path, enable_progress_bar=False)
    assert np.isfinite(result.history["train_loss"]).all()
    model = load_recommender(result.bundle, tiny_data)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model.score_users(torch.tensor([0]))
    assert scores.dtype == torch.float32


def _module(data, **loss):
    config = _config(
        loss={"kind": "softmax", **loss}, data={"sampler": "none", "in_batch_negatives": True}
    )
    torch.manual_seed(0)
    return RecommenderModule(build_recommender(data, config), config, data.train, data.valid)


def test_logq_correction_is_neutral_for_equal_popularity(tiny_data):
    """Same popularity everywhere: the correction shifts every in-batch logit equally."""
    module = _module(tiny_data, logq_correction=True)
    module.log_popularity.fill_(-3.0)
    plain = _module(tiny_data, logq_correction=False)
    batch = {
        "users": torch.tensor([0, 1, 2, 3]),
        "pos": torch.tensor([4, 5, 6, 7]),
        "neg": torch.zeros(4, 0, dtype=torch.long),
    }
    assert module.batch_loss(batch).item() == pytest.approx(
        plain.batch_loss(batch).item(), rel=1e-5
    )


def test_logq_correction_lowers_popular_in_batch_negatives(tiny_data):
    module = _module(tiny_data, logq_correction=True, temperature=0.5)
    pos = torch.tensor([1, 2, 3])
    log_pop = torch.full((tiny_data.n_items,), -5.0)
    log_pop[1] = -1.0  # item 1 is popular
    module.log_popularity.copy_(log_pop)
    scores = torch.zeros(3)
    in_batch = torch.zeros(3, 3)
    _, corrected = module._logq_corrected(
        pos, torch.zeros(3, 0, dtype=torch.long), scores, in_batch, in_batch=True
    )
    assert (corrected[:, 0] < corrected[:, 1]).all()  # popular item's logit is discounted


LIGHTNING_NOISE = (
    "isinstance(treespec, LeafSpec)",
    "is smaller than the logging interval",
    "exists and is not empty",
)


def test_runs_emit_no_lightning_noise(tiny_data, tmp_path, recwarn):
    """9 batches per epoch < log_every_n_steps (10), and the second run finds the first's
    checkpoints (moved aside into the checkpoint directory): all three warnings' triggers."""
    config = _config(trainer={"max_epochs": 1})
    assert config.trainer.log_every_n_steps > np.ceil(tiny_data.train.nnz / 32)
    train_recommender(tiny_data, config, run_dir=tmp_path, enable_progress_bar=False)
    train_recommender(tiny_data, config, run_dir=tmp_path, enable_progress_bar=False)
    assert list((tmp_path / "checkpoints").glob("previous-*/last.ckpt"))
    messages = [str(w.message) for w in recwarn]
    assert not [m for m in messages if any(noise in m for noise in LIGHTNING_NOISE)], messages


def test_cpu_threads_auto_rule(monkeypatch):
    import crossrec.models.training as training

    for cores, expected in ((1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)):
        monkeypatch.setattr(training.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert training.resolve_cpu_threads("auto") == expected, cores
    assert training.resolve_cpu_threads(3) == 3
    assert training.resolve_cpu_threads(None) is None


def test_content_lr_scale_gives_the_content_projection_its_own_group(tiny_data):
    """optim.content_lr_scale: fusion and content bias in a "content" group at lr x scale; the ID
    tables stay at lr; a step moves the projection by about the ratio of the two rates."""
    config = _config(model={"content_bias": True}, optim={"lr": 0.01, "content_lr_scale": 0.01})
    torch.manual_seed(0)
    model = build_recommender(tiny_data, config)
    module = RecommenderModule(model, config, tiny_data.train, tiny_data.valid)
    optimizer = module.configure_optimizers()
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["content"]["lr"] == pytest.approx(0.0001) and groups["recommender"]["lr"] == 0.01
    content_ids = {id(p) for p in groups["content"]["params"]}
    expected = {id(p) for m in (model.fusion, model.content_bias) for p in m.parameters()}
    assert content_ids == expected
    assert id(model.item_id.weight) in {id(p) for p in groups["recommender"]["params"]}
    assert content_ids.isdisjoint(id(p) for p in groups["recommender"]["params"])

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = {
        "users": torch.tensor([0, 1, 2]),
        "pos": torch.tensor([0, 1, 2]),
        "neg": torch.tensor([[3, 4], [5, 6], [7, 8]]),
    }
    module.batch_loss(batch).backward()
    optimizer.step()
    # Adam's first step moves each coordinate with a gradient by about its lr
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    fusion_moves = [v for n, v in moved.items() if n.startswith("fusion.") and v > 0]
    assert fusion_moves and max(fusion_moves) <= 0.0001 * 1.01
    assert moved["item_id.weight"] == pytest.approx(0.01, rel=0.01)

    # scale 1: one group, as before
    plain = _config(optim={"lr": 0.01, "content_lr_scale": 1.0})
    plain_model = build_recommender(tiny_data, plain)
    single = RecommenderModule(
        plain_model, plain, tiny_data.train, tiny_data.valid
    ).configure_optimizers()
    assert [g["name"] for g in single.param_groups] == ["recommender"]
