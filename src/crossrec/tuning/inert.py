"""Settings that do nothing in some configurations, so a trial that only changes them would
train the very model another trial trains (a neighbour of the defaults with ``loss.cosine:
true`` under BPR trained for minutes and scored what the defaults scored).

The rules restate the model code; ``tests/tuning/test_inert.py`` checks each one against it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from crossrec.tuning.space import get_path

#: key -> (the key it depends on, the values of that key under which it acts).
#: ``crossrec.models.module`` normalises scores (cosine) and applies the logQ correction only
#: for ``loss.kind: softmax``, and only the softmax loss reads the temperature (BPR and BCE
#: accept it and ignore it).
ACTS_ONLY_WHEN: dict[str, tuple[str, tuple[Any, ...]]] = {
    "loss.cosine": ("loss.kind", ("softmax",)),
    "loss.temperature": ("loss.kind", ("softmax",)),
    "loss.logq_correction": ("loss.kind", ("softmax",)),
}


def _drop(params: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    node: Any = params
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def effective_params(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The finetune parameters without the keys that do nothing in this configuration: two
    configurations with equal effective parameters train the same model."""
    result = copy.deepcopy(dict(resolved))
    for key, (decider, acting) in ACTS_ONLY_WHEN.items():
        if get_path(resolved, decider) not in acting:
            _drop(result, key)
    return result


def inert_reason(key: str, resolved: Mapping[str, Any]) -> str:
    """Why ``key`` does nothing in ``resolved`` ("" when it acts)."""
    if key not in ACTS_ONLY_WHEN:
        return ""
    decider, acting = ACTS_ONLY_WHEN[key]
    value = get_path(resolved, decider)
    if value in acting:
        return ""
    return f"{key} only acts when {decider} is {' or '.join(map(str, acting))} (here {value})"
