"""The model's pluggable parts, by name (torch-free: config schemas validate names here).

Built-in entries register themselves in the modules listed; a new one is a decorated class in
one of those modules (or any module imported before training) plus its name in YAML:

    @FUSION_STRATEGIES.register("sum")
    class SumFusion(nn.Module): ...
"""

from __future__ import annotations

from crossrec.registry import Registry

#: fused modality vectors -> one content vector per item; factory(spec) -> nn.Module
FUSION_STRATEGIES: Registry = Registry(
    "fusion strategy",
    ["crossrec.models.item_towers.modality", "crossrec.models.item_towers.llm"],
    builtin_names=["concat", "gated", "attention", "llm"],
)
#: ranking losses over (pos (b,), neg (b, m), valid (b, m), config) -> scalar
LOSSES: Registry = Registry(
    "loss", ["crossrec.models.losses"], builtin_names=["bpr", "bce", "softmax"]
)
#: user-history encoders: (item_table, history) -> (b, d)
USER_TOWERS: Registry = Registry(
    "user tower", ["crossrec.models.towers"], builtin_names=["mean", "attention", "transformer"]
)
