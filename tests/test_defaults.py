"""One source for every default: each parameters_<pipeline>.yml block, validated, equals its
schema's defaults — except the keys that are data, not defaults (dataset entries, the raw
root, the evaluate baselines and the tune search space), listed here on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crossrec.data.config import IngestConfig
from crossrec.encoders.config import FeaturizeConfig
from crossrec.evaluation.config import EvaluateConfig
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.refresh.config import RefreshConfig
from crossrec.serving.config import RecommendConfig
from crossrec.tuning.config import TuneConfig

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"

#: (file, block, schema, keys whose YAML value is content rather than a default)
BLOCKS = [
    ("parameters_ingest.yml", "ingest", IngestConfig, {"raw_root", "datasets"}),
    ("parameters_featurize_modalities.yml", "featurize_modalities", FeaturizeConfig, set()),
    ("parameters_fuse.yml", "fuse", FuseConfig, set()),
    ("parameters_finetune.yml", "finetune", FinetuneConfig, set()),
    ("parameters_evaluate.yml", "evaluate", EvaluateConfig, {"baselines", "baseline_defaults"}),
    (
        "parameters_tune.yml",
        "tune",
        TuneConfig,
        {"search_space", "llm_search_space", "fixed"},
    ),
    ("parameters_recommend.yml", "recommend", RecommendConfig, set()),
    ("parameters_refresh.yml", "refresh", RefreshConfig, set()),
]


def _differences(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: yaml {a!r} vs schema {b!r}"]


@pytest.mark.parametrize("file, block, schema, content_keys", BLOCKS, ids=[b[1] for b in BLOCKS])
def test_yaml_block_equals_schema_defaults(file, block, schema, content_keys):
    raw = yaml.safe_load((CONF / file).read_text())[block]
    from_yaml = schema.model_validate(raw).model_dump(mode="json")
    defaults = schema.model_construct().model_dump(mode="json")
    required = {name for name, field in schema.model_fields.items() if field.is_required()}
    # paths that interpolate the dataset name are project wiring, not defaults
    interpolated = {k for k, v in raw.items() if "${" in str(v)}
    for key in content_keys | required | interpolated:
        from_yaml.pop(key, None)
        defaults.pop(key, None)
    assert _differences(from_yaml, defaults) == []
