"""Resuming with a changed config, fresh runs over old checkpoints, and Ctrl-C."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from crossrec.models.config import FinetuneConfig
from crossrec.models.resume import ResumeMismatchError, classify, config_differences
from crossrec.models.training import train_recommender
from crossrec.pipelines.finetune.nodes import resume_command


def _config(**overrides) -> FinetuneConfig:
    base = {
        "model": {"embedding_dim": 16, "content_mix": {"kind": "none"}},  # one model's checkpoints
        "data": {"batch_size": 32, "num_negatives": 2},
        "optim": {"lr": 0.01},
        "trainer": {"max_epochs": 1, "seed": 0, "cpu_threads": 1, "val_ks": [5, 10, 20]},
    }
    for key, value in overrides.items():
        base.setdefault(key, {}).update(value)
    return FinetuneConfig.model_validate(base)


def _train(data, config, run_dir, **kwargs):
    return train_recommender(data, config, run_dir=run_dir, enable_progress_bar=False, **kwargs)


class RecordOptimizer(pl.Callback):
    """lr of each param group and EarlyStopping's patience as each epoch starts."""

    def __init__(self):
        self.seen: list[tuple[int, list[float], int]] = []

    def on_train_epoch_start(self, trainer, module):
        lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
        self.seen.append((trainer.current_epoch, lrs, trainer.early_stopping_callback.patience))


@pytest.fixture()
def first_run(tiny_data, tmp_path) -> Path:
    """One finished epoch of a run: its last.ckpt is what the tests resume from."""
    _train(tiny_data, _config(), tmp_path)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    return tmp_path


def test_changed_lr_and_patience_are_applied_warned_and_recorded(tiny_data, first_run, caplog):
    config = _config(optim={"lr": 0.002}, trainer={"max_epochs": 2, "resume": True, "patience": 3})
    recorder = RecordOptimizer()
    with caplog.at_level(logging.INFO, logger="crossrec.models"):
        result = _train(tiny_data, config, first_run, extra_callbacks=[recorder])
    # the resumed optimizer runs with the NEW lr (Lightning restored the old one first), the
    # content projection's group at lr x optim.content_lr_scale (0.1)
    [(epoch, lrs, patience)] = recorder.seen
    assert (epoch, patience) == (1, 3) and lrs == pytest.approx([0.002, 0.0002])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("optim.lr: 0.01 -> 0.002" in w and "trainer.patience: 8 -> 3" in w for w in warnings)
    assert result.bundle["config"]["optim"]["lr"] == 0.002
    steps = int(np.ceil(tiny_data.train.nnz / 32))
    assert result.bundle["resumed_from"] == {
        "checkpoint": str(first_run / "checkpoints" / "last.ckpt"),
        "epoch": 0,
        "global_step": steps,
    }
    assert result.history["epoch"].tolist() == [0, 1]
    # the checkpoint the resumed run wrote records what it ran with: a later resume compares
    saved = torch.load(first_run / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["crossrec_config"]["optim"]["lr"] == 0.002 and saved["epoch"] == 1


def test_changed_embedding_dim_fails_before_training_naming_every_key(tiny_data, first_run):
    config = _config(
        model={"embedding_dim": 32}, loss={"kind": "softmax"}, trainer={"resume": True}
    )
    with pytest.raises(ResumeMismatchError) as error:
        _train(tiny_data, config, first_run)
    message = str(error.value)
    assert "model.embedding_dim: 16 -> 32" in message
    assert "loss.kind: 'bpr' -> 'softmax'" in message
    assert "trainer.resume: false" in message and "restore" in message
    assert "last.ckpt" in message
    assert "size mismatch" not in message
    saved = torch.load(first_run / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["epoch"] == 0  # nothing trained, nothing overwritten


def test_checkpoint_without_stored_config_still_fails_clearly(tiny_data, first_run):
    """A checkpoint from before the config was stored: the weight shapes are compared."""
    last = first_run / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    del saved["crossrec_config"], saved["crossrec_data"]
    torch.save(saved, last)
    config = _config(model={"embedding_dim": 32}, trainer={"resume": True})
    with pytest.raises(ResumeMismatchError, match=r"model\.user_id\.weight: \[40, 16\]") as error:
        _train(tiny_data, config, first_run)
    assert "size mismatch" not in str(error.value)


def test_other_data_fails_clearly(first_run):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_tiny_data

    other = make_tiny_data(n_users=44)
    with pytest.raises(ResumeMismatchError, match="40 users x 48 items, the data now has 44 x 48"):
        _train(other, _config(trainer={"resume": True}), first_run)


def test_init_only_key_keeps_the_checkpoint_value(tiny_data, first_run, caplog):
    config = _config(model={"embedding_dim": 16, "init_std": 0.5}, trainer={"resume": True})
    with caplog.at_level(logging.WARNING, logger="crossrec.models"):
        result = _train(tiny_data, config, first_run)
    assert result.bundle["config"]["model"]["init_std"] == 0.1
    assert "model.init_std: 0.1 -> 0.5" in caplog.text


def test_fresh_run_moves_old_checkpoints_aside(tiny_data, first_run, caplog, recwarn):
    checkpoints = first_run / "checkpoints"
    old = {p.name: p.read_bytes() for p in checkpoints.glob("*.ckpt")}
    assert "last.ckpt" in old
    with caplog.at_level(logging.INFO, logger="crossrec.models"):
        _train(tiny_data, _config(optim={"lr": 0.003}), first_run)
    aside = list(checkpoints.glob("previous-*"))
    assert len(aside) == 1
    assert {p.name: p.read_bytes() for p in aside[0].glob("*.ckpt")} == old
    assert str(aside[0]) in caplog.text
    new = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert new["crossrec_config"]["optim"]["lr"] == 0.003
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]
    # and a second fresh run moves the newer ones into their own folder
    _train(tiny_data, _config(), first_run)
    assert len(list(checkpoints.glob("previous-*"))) == 2


class InterruptAt(pl.Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread


def test_ctrl_c_logs_the_resume_command_and_resuming_works(tiny_data, tmp_path, caplog):
    command = resume_command("lastfm2k_multimodal")
    assert command == (
        "kedro run --pipelines finetune "
        "--params finetune.trainer.resume=true,dataset=lastfm2k_multimodal"
    )
    handler = signal.getsignal(signal.SIGINT)
    config = _config(trainer={"max_epochs": 3, "patience": 10})
    with caplog.at_level(logging.INFO, logger="crossrec.models"), pytest.raises(KeyboardInterrupt):
        _train(
            tiny_data, config, tmp_path, extra_callbacks=[InterruptAt(1)], resume_command=command
        )
    # Lightning ignores SIGINT during its shutdown; a caller must get Ctrl-C back afterwards
    assert signal.getsignal(signal.SIGINT) is handler
    lines = [r.getMessage() for r in caplog.records if "interrupted" in r.getMessage()]
    assert len(lines) == 1 and lines[0].endswith(f"To resume: {command}")
    assert "epoch 1" in lines[0] and "last.ckpt" in lines[0]

    resumed = _train(
        tiny_data, _config(trainer={"max_epochs": 3, "patience": 10, "resume": True}), tmp_path
    )
    assert resumed.bundle["resumed_from"]["epoch"] == 0
    assert resumed.history["epoch"].tolist() == [0, 1, 2]


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(
    tiny_data, tmp_path, caplog
):
    with caplog.at_level(logging.INFO, logger="crossrec.models"), pytest.raises(KeyboardInterrupt):
        _train(tiny_data, _config(), tmp_path, extra_callbacks=[InterruptAt(0)])
    assert "before any checkpoint was saved: nothing to resume" in caplog.text


def test_key_rules():
    assert classify("model.embedding_dim") == "must_match"
    assert classify("model.fusion.llm.lora_r") == "must_match"
    assert classify("loss.cosine") == "must_match"
    assert classify("trainer.monitor") == "must_match"
    assert classify("optim.content_lr_scale") == "must_match"  # adds / removes a param group
    assert classify("model.dropout") == "applied"
    assert classify("model.fusion.llm_chunk_size") == "applied"
    assert classify("loss.temperature") == "applied"
    assert classify("optim.lr") == "applied"
    assert classify("data.batch_size") == "applied"
    assert classify("model.init_std") == "init_only"
    assert classify("trainer.resume") == "ignored"
    old = FinetuneConfig().model_dump(mode="json")
    new = _config().model_dump(mode="json")
    keys = [key for key, _, _ in config_differences(old, new)]
    assert "model.embedding_dim" in keys and "trainer.val_ks" in keys
    assert "model.fusion.strategy" not in keys


def test_checkpoint_from_before_a_new_key_resumes_at_the_keys_old_behaviour(tiny_data, tmp_path):
    """A run written before optim.content_lr_scale (one optimizer group: content at lr) and
    model.content_space existed: those keys are read at what that code did, so the same
    settings resume, and the new default (content at 0.1 x lr, another group) fails by name."""
    old = _config(optim={"lr": 0.01, "content_lr_scale": 1.0})
    _train(tiny_data, old, tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    del saved["crossrec_config"]["optim"]["content_lr_scale"]
    del saved["crossrec_config"]["model"]["content_space"]
    torch.save(saved, last)

    with pytest.raises(ResumeMismatchError, match=r"optim\.content_lr_scale: 1\.0 -> 0\.1"):
        _train(tiny_data, _config(trainer={"resume": True}), tmp_path)
    same = _config(
        optim={"lr": 0.01, "content_lr_scale": 1.0}, trainer={"max_epochs": 2, "resume": True}
    )
    result = _train(tiny_data, same, tmp_path)
    assert result.history["epoch"].tolist() == [0, 1]


def test_a_stored_config_reads_new_keys_at_their_old_behaviour():
    """complete_stored_config: what an older bundle's extra seeds and refreshes train with."""
    from crossrec.models.config import complete_stored_config

    stored = FinetuneConfig().model_dump(mode="json")
    del stored["optim"]["content_lr_scale"], stored["model"]["content_space"]
    stored["optim"]["lr"] = 0.02
    done = FinetuneConfig.model_validate(complete_stored_config(stored))
    assert done.optim.content_lr_scale == 1.0  # one rate, as that code trained
    assert done.model.content_space == "shared" and done.optim.lr == 0.02
    # a config that has the key keeps its value
    assert (
        complete_stored_config({"optim": {"content_lr_scale": 0.1}})["optim"]["content_lr_scale"]
        == 0.1
    )
