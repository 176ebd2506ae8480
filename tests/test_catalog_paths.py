"""Per-dataset paths: the catalog and the tune parameters name the run's dataset folder
(``--params dataset=<name>``, else globals' default_dataset) through one expression,
``_dataset`` in conf/base/catalog.yml and the ``dataset`` parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf.resolvers import oc

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: catalog entry -> its file, with {} for the dataset name
PATHS = {
    "interactions": "data/02_intermediate/{}/interactions.parquet",
    "item_texts": "data/04_feature/{}/item_texts.json",
    "fused_item_features": "data/05_model_input/{}/fused_item_features.pkl",
    "trained_model": "data/06_models/{}/trained_model.pkl",
    "refreshed_model": "data/06_models/{}/refreshed_model.pkl",
    "recommendations": "data/07_model_output/{}/recommendations.parquet",
    "metrics": "data/08_reporting/{}/metrics.json",
    "tune_summary": "data/08_reporting/{}/tune_summary.json",
}


def _loader(runtime_params: dict):
    from kedro.config import OmegaConfigLoader

    return OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        runtime_params=runtime_params,
        custom_resolvers={"oc.env": oc.env},
    )


@pytest.mark.parametrize(
    "runtime, dataset",
    [({}, "movielens100k_multimodal"), ({"dataset": "lastfm2k_multimodal"}, "lastfm2k_multimodal")],
)
def test_catalog_and_tune_paths_name_the_run_dataset(runtime, dataset):
    loader = _loader(runtime)
    catalog, params = loader["catalog"], loader["parameters"]
    assert {name: catalog[name]["filepath"] for name in PATHS} == {
        name: path.format(dataset) for name, path in PATHS.items()
    }
    assert catalog["text_embedding_cache"]["path"] == "data/04_feature/embedding_cache"
    assert not any(name.startswith("_") for name in catalog)  # variables are not datasets
    tune = params["tune"]
    assert params["dataset"] == dataset
    assert tune["study_name"] == f"crossrec-{dataset}"
    assert tune["storage"]["url"] == f"sqlite:///data/07_model_output/{dataset}/optuna.db"
    assert tune["run_root"] == f"data/06_models/{dataset}/tune"
