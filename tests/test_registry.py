"""Registries: names resolve, misspelt names fail with a suggestion, and the torch-free list of
built-in names that config validation trusts matches what the modules really register."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crossrec.data.adapters.base import ADAPTERS
from crossrec.evaluation.config import BASELINES, BaselineConfig
from crossrec.models.config import FinetuneConfig
from crossrec.models.registries import FUSION_STRATEGIES, LOSSES, USER_TOWERS
from crossrec.registry import Registry, UnknownComponentError


@pytest.mark.parametrize("registry", [FUSION_STRATEGIES, LOSSES, USER_TOWERS, BASELINES, ADAPTERS])
def test_builtin_names_match_the_registered_components(registry):
    """Other tests register toy components; every one that crossrec itself ships is listed."""
    shipped = {n for n in registry.names() if registry.get(n).__module__.startswith("crossrec.")}
    assert shipped == set(registry.builtin_names)


def test_unknown_name_fails_with_did_you_mean_and_the_known_names():
    with pytest.raises(UnknownComponentError, match=r"unknown loss 'bpt' \(did you mean 'bpr'\?\)"):
        LOSSES.check("bpt")
    with pytest.raises(ValueError, match=r"(?s)model.fusion.strategy.*did you mean 'gated'"):
        FinetuneConfig.model_validate({"model": {"fusion": {"strategy": "gatd"}}})
    with pytest.raises(
        ValueError,
        match=r"unknown baseline .pop.; registered: bpr, ease, finetune, item_knn, .*most_popular",
    ):
        BaselineConfig(kind="pop")


def test_validating_builtin_names_imports_no_torch():
    code = (
        "import sys\n"
        "from crossrec.models.config import FinetuneConfig\n"
        "from crossrec.evaluation.config import EvaluateConfig\n"
        "FinetuneConfig.model_validate({'model': {'fusion': {'strategy': 'llm'}, "
        "'user_tower': {'kind': 'mean'}}, 'loss': {'kind': 'softmax'}})\n"
        "EvaluateConfig.model_validate({'baselines': {'pop': {'kind': 'most_popular'}}})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_new_component_is_one_decorated_class():
    registry: Registry = Registry("widget")

    @registry.register("plain")
    class Plain:
        pass

    assert registry.get("plain") is Plain and registry.names() == ["plain"]
    with pytest.raises(ValueError, match="already registered"):

        @registry.register("plain")
        class Other:
            pass


def test_misspelt_adapter_fails_at_config_time_with_a_suggestion():
    from crossrec.data.config import parse_ingest_params

    with pytest.raises(ValueError, match=r"(?s)datasets.shop.adapter.*did you mean 'generic'"):
        parse_ingest_params({"raw_root": ".", "datasets": {"shop": {"adapter": "generik"}}})
