"""One source for every default: each parameters_<pipeline>.yml block, validated, equals its
schema's defaults — except the keys that are data, not defaults (dataset entries, the raw
root, the evaluate baselines and the tune search space), listed here on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crossrec.config import BLOCKS, block_file, block_schema

ROOT = Path(__file__).resolve().parents[1]

#: keys whose YAML value is content rather than a default, per block
CONTENT_KEYS = {
    "ingest": {"raw_root", "datasets"},
    "evaluate": {"baselines", "baseline_defaults"},
    "tune": {"search_space", "search_groups", "llm_search_space", "fixed"},
}


def _differences(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: yaml {a!r} vs schema {b!r}"]


@pytest.mark.parametrize("block", BLOCKS)
def test_yaml_block_equals_schema_defaults(block):
    schema, content_keys = block_schema(block), CONTENT_KEYS.get(block, set())
    raw = yaml.safe_load((ROOT / block_file(block)).read_text())[block]
    from_yaml = schema.model_validate(raw).model_dump(mode="json")
    defaults = schema.model_construct().model_dump(mode="json")
    required = {name for name, field in schema.model_fields.items() if field.is_required()}
    # paths that interpolate the dataset name are project wiring, not defaults
    interpolated = {k for k, v in raw.items() if "${" in str(v)}
    for key in content_keys | required | interpolated:
        from_yaml.pop(key, None)
        defaults.pop(key, None)
    assert _differences(from_yaml, defaults) == []


def test_every_parameters_file_holds_one_known_block():
    """The YAML files and crossrec.config.BLOCKS name the same blocks."""
    files = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "conf" / "base").glob("parameters_*.yml")
    }
    assert files == {block_file(block) for block in BLOCKS}
    for block in BLOCKS:
        assert list(yaml.safe_load((ROOT / block_file(block)).read_text())) == [block]
