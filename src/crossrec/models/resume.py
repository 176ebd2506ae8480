"""Resuming a Lightning run: check the checkpoint against the new config, or move it aside.

A checkpoint stores the config of the run that wrote it (``crossrec_config``, see
``RecommenderModule.on_save_checkpoint``). On resume every differing dotted key falls under one
rule, decided per key:

- **must match** — the checkpoint would hold a different model: the learnt parameters' shapes
  or what they compute (``model.*``: embedding size, towers, fusion, propagation, ...; and
  ``loss.cosine``, which changes the scoring function), the objective they were trained for
  (``loss.kind``), the optimizer state's type and groups (``optim.optimizer``,
  ``optim.content_lr_scale``), or what "best so far"
  meant for the restored ModelCheckpoint/EarlyStopping state (``trainer.monitor``,
  ``trainer.mode``). Resuming fails before training, naming every such key with its old and
  new value and the two ways out.
- **applied** — everything else (``optim.lr``, ``optim.llm_lr``, ``optim.weight_decay``,
  ``optim.gradient_clip_val``, ``data.*``, the other ``loss.*`` weights, ``trainer.max_epochs``,
  ``trainer.patience``, ``model.dropout``, ``model.id_dropout``, ...): takes effect from the
  resumed epoch on (the optimizer's restored learning rates and weight decay are overwritten in
  ``on_train_start``, EarlyStopping keeps the configured patience) and is listed in a WARNING.
- **init-only** — ``model.init_std`` only draws the initial weights, which come from the
  checkpoint: the checkpoint's value stays in the effective config, with a WARNING.
- ``trainer.resume`` and ``run_dir`` are not settings of the model or the run: ignored.

The bundle of a resumed run records the effective config and ``resumed_from``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossrec.models.config import FinetuneConfig, complete_stored_config

log = logging.getLogger(__name__)

MUST_MATCH = (
    "model",
    "loss.kind",
    "loss.cosine",
    "optim.optimizer",
    "optim.content_lr_scale",  # 1 <-> another value adds / removes an optimizer param group
    "trainer.monitor",
    "trainer.mode",
)
#: under ``model``: regularisation and inference chunking, no parameter changes with them
APPLIED_MODEL_KEYS = (
    "model.dropout",
    "model.id_dropout",
    "model.propagation.edge_dropout",
    "model.fusion.llm_chunk_size",
    "model.fusion.llm.lora_dropout",
    "model.fusion.llm.gradient_checkpointing",
)
INIT_ONLY = ("model.init_std",)
IGNORED = ("trainer.resume", "run_dir")

WAYS_OUT = (
    "Either restore the old value(s) to continue that run, or set trainer.resume: false for a "
    "fresh run (the old checkpoints are then moved aside, not deleted)."
)


class ResumeMismatchError(ValueError):
    """The checkpoint to resume from holds a different model than the config describes."""


@dataclass
class ResumePlan:
    """What a resume will really run with."""

    config: FinetuneConfig  # the effective config (init-only keys from the checkpoint)
    resumed_from: dict[str, Any]  # checkpoint path, epoch, global_step
    applied: list[tuple[str, Any, Any]] = field(default_factory=list)
    kept: list[tuple[str, Any, Any]] = field(default_factory=list)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def classify(key: str) -> str:
    """``must_match`` | ``applied`` | ``init_only`` | ``ignored`` (see the module docstring)."""
    if _under(key, IGNORED):
        return "ignored"
    if _under(key, INIT_ONLY):
        return "init_only"
    if _under(key, APPLIED_MODEL_KEYS):
        return "applied"
    if _under(key, MUST_MATCH):
        return "must_match"
    return "applied"


def config_differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """Sorted ``(dotted key, old value, new value)`` of every key whose value differs."""
    flat_old, flat_new = flatten(old), flatten(new)
    missing = object()
    diffs = []
    for key in sorted(set(flat_old) | set(flat_new)):
        a, b = flat_old.get(key, missing), flat_new.get(key, missing)
        if a != b:
            diffs.append((key, None if a is missing else a, None if b is missing else b))
    return diffs


def _lines(diffs: list[tuple[str, Any, Any]]) -> str:
    return "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in diffs)


def plan_resume(
    checkpoint: dict, path: Path | str, config: FinetuneConfig, n_users: int, n_items: int
) -> ResumePlan:
    """Check a loaded checkpoint against the new config and data; the effective config.

    Raises :class:`ResumeMismatchError` naming every must-match key that differs (or the data
    shape), before any training or state loading.
    """
    resumed_from = {
        "checkpoint": str(path),
        "epoch": int(checkpoint.get("epoch", -1)),
        "global_step": int(checkpoint.get("global_step", 0)),
    }
    shape = checkpoint.get("crossrec_data")
    if shape and (shape["n_users"], shape["n_items"]) != (n_users, n_items):
        raise ResumeMismatchError(
            f"cannot resume from {path}: it was trained on {shape['n_users']} users x "
            f"{shape['n_items']} items, the data now has {n_users} x {n_items}. Resume only "
            f"with the data that run used, or set trainer.resume: false for a fresh run."
        )
    old = checkpoint.get("crossrec_config")
    if old is None:
        log.warning(
            "%s stores no config (written by an older crossrec): settings cannot be compared; "
            "resuming with the current config",
            path,
        )
        return ResumePlan(config=config, resumed_from=resumed_from)
    diffs = config_differences(complete_stored_config(old), config.model_dump(mode="json"))
    rule = {key: classify(key) for key, _, _ in diffs}
    blocking = [d for d in diffs if rule[d[0]] == "must_match"]
    if blocking:
        raise ResumeMismatchError(
            f"cannot resume from {path}: {len(blocking)} setting(s) differ from the run that "
            f"wrote it and change the model it holds: {_lines(blocking)}. {WAYS_OUT}"
        )
    applied = [d for d in diffs if rule[d[0]] == "applied"]
    kept = [d for d in diffs if rule[d[0]] == "init_only"]
    effective = config
    if kept:
        dump = config.model_dump(mode="json")
        for key, old_value, _ in kept:
            _set_dotted(dump, key, old_value)
        effective = FinetuneConfig.model_validate(dump)
    return ResumePlan(effective, resumed_from, applied, kept)


def _set_dotted(tree: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = value


def log_plan(plan: ResumePlan) -> None:
    where = plan.resumed_from
    log.info(
        "resuming from %s (saved after epoch %d, step %d)",
        where["checkpoint"],
        where["epoch"],
        where["global_step"],
    )
    if plan.applied:
        log.warning(
            "resumed run with changed settings, applied from now on: %s", _lines(plan.applied)
        )
    if plan.kept:
        log.warning(
            "changed settings with no effect on a resumed run (the weights come from the "
            "checkpoint), keeping the checkpoint's value: %s",
            _lines(plan.kept),
        )


def check_state_shapes(checkpoint_state: dict, module_state: dict, path: Path | str) -> None:
    """Names, shapes and keys of the saved state against the model about to be trained.

    The config check catches changed settings; this catches what it cannot see (a checkpoint
    without a stored config, a changed feature set), instead of PyTorch's raw load error.
    """
    problems = []
    for name, tensor in module_state.items():
        if name not in checkpoint_state:
            problems.append(f"{name} is not in the checkpoint")
        elif tuple(checkpoint_state[name].shape) != tuple(tensor.shape):
            problems.append(
                f"{name}: {list(checkpoint_state[name].shape)} in the checkpoint, "
                f"{list(tensor.shape)} now"
            )
    problems += [
        f"{name} is only in the checkpoint" for name in checkpoint_state if name not in module_state
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... {len(problems) - 8} more" if len(problems) > 8 else ""
        )
        raise ResumeMismatchError(
            f"cannot resume from {path}: its weights do not fit the model the config and data "
            f"describe ({shown}). {WAYS_OUT}"
        )


def move_aside_checkpoints(checkpoint_dir: Path) -> Path | None:
    """Move a previous run's ``*.ckpt`` into ``checkpoint_dir/previous-<timestamp>/``.

    A fresh run must not pick them up (ModelCheckpoint would compare against their scores), and
    must not delete them either: they may be the only copy of a long run someone meant to resume.
    """
    old = sorted(checkpoint_dir.glob("*.ckpt"))
    if not old:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = checkpoint_dir / f"previous-{stamp}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = checkpoint_dir / f"previous-{stamp}-{suffix}"
    target.mkdir()
    for path in old:
        shutil.move(str(path), target / path.name)
    log.info(
        "fresh run (trainer.resume: false): moved %d checkpoint(s) of the previous run to %s",
        len(old),
        target,
    )
    return target
