"""The tune pipeline end to end with the REAL objective (train_recommender on the synthetic
dataset, 3 epochs per trial), run by Kedro's runner with file datasets in a temp folder."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset
from kedro_datasets.plotly import JSONDataset as PlotlyJSONDataset
from kedro_datasets.yaml import YAMLDataset
from optuna.trial import TrialState

from crossrec.config import ConfigError
from crossrec.hooks import check_tuned_for
from crossrec.models.config import FinetuneConfig
from crossrec.pipelines.tune import create_pipeline
from crossrec.pipelines.tune.nodes import needs_item_texts, validate_tuning
from crossrec.tuning.config import TuneConfig

PROJECT_ROOT = Path(__file__).resolve().parents[3]
N_TRIALS = 5


def tune_params(tmp_path: Path) -> dict[str, Any]:
    return {
        "study_name": "crossrec-synthetic",
        "storage": {
            "url": f"sqlite:///{tmp_path}/model_output/optuna.db",
            "heartbeat_interval_s": 10,
        },
        "n_trials": N_TRIALS,
        "metric": "val/recall@20",
        "sampler": {"type": "tpe", "n_startup_trials": 3},
        # aggressive: after one finished trial, anything below the median at any epoch stops
        "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "fixed": {"trainer.max_epochs": 3},
        # enqueued neighbours are never pruned; this study is about pruning sampled trials
        "enqueue_neighbours": False,
        "search_space": {
            "optim.lr": {"type": "float", "low": 1e-4, "high": 5e-2, "log": True},
            "model.embedding_dim": {"type": "int", "low": 8, "high": 24, "step": 8},
            "model.fusion.strategy": {
                "type": "categorical",
                "choices": ["concat", "gated", "attention"],
            },
        },
        "run_root": str(tmp_path / "runs"),
    }


def catalog(tmp_path: Path, inputs: dict[str, Any]) -> DataCatalog:
    report = tmp_path / "reporting"
    datasets = {name: MemoryDataset(value) for name, value in inputs.items()}
    datasets.update(
        {
            "tune_summary": JSONDataset(filepath=str(report / "tune_summary.json")),
            "tune_trials": CSVDataset(
                filepath=str(report / "tune_trials.csv"), save_args={"index": False}
            ),
            "tuned_finetune_parameters": YAMLDataset(
                filepath=str(tmp_path / "conf" / "tuned" / "parameters_finetune.yml")
            ),
            "tune_history_plot": PlotlyJSONDataset(filepath=str(report / "history.json")),
            "tune_importance_plot": PlotlyJSONDataset(filepath=str(report / "importance.json")),
            "tune_parallel_plot": PlotlyJSONDataset(filepath=str(report / "parallel.json")),
        }
    )
    return DataCatalog(datasets=datasets)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, synthetic_ingested, synthetic_fused) -> dict[str, Any]:
    """Run the whole tune pipeline once; the tests below inspect what it left."""
    tmp_path = tmp_path_factory.mktemp("tune")
    finetune = copy.deepcopy(
        yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    )
    # The shipped finetune block with the tiny test trainer settings.
    finetune["model"]["embedding_dim"] = 16
    finetune["trainer"].update(
        {
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "val_ks": [20],
            "log_every_n_steps": 1,
            "patience": 3,
        }
    )
    finetune["data"]["batch_size"] = 128
    base_dir = tmp_path / "conf" / "base"
    base_dir.mkdir(parents=True)
    (base_dir / "parameters_finetune.yml").write_text(yaml.safe_dump({"finetune": finetune}))
    inputs = {
        "interactions": synthetic_ingested["interactions"],
        "items": synthetic_ingested["items"],
        "dataset_info": synthetic_ingested["dataset_info"],
        **synthetic_fused,
        "params:tune": tune_params(tmp_path),
        "params:finetune": finetune,
        "params:seed": 0,
        "params:dataset": "synthetic_multimodal",
    }
    SequentialRunner().run(create_pipeline(), catalog(tmp_path, inputs))
    params = TuneConfig.model_validate(inputs["params:tune"])
    study = optuna.load_study(study_name=params.study_name, storage=params.storage.url)
    return {"tmp": tmp_path, "study": study, "finetune": finetune, "config": params}


def test_study_completes_with_pruned_trials_and_real_metrics(tuned):
    study = tuned["study"]
    states = [t.state for t in study.trials]
    assert len(states) == N_TRIALS
    assert states.count(TrialState.PRUNED) >= 1
    assert states.count(TrialState.COMPLETE) >= 1
    assert TrialState.FAIL not in states
    for trial in study.trials:
        # the Lightning callback reported val/recall@20 once per epoch until the end / pruning
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(len(steps))) and 1 <= len(steps) <= 3
        assert all(0.0 <= v <= 1.0 for v in trial.intermediate_values.values())
        if trial.state == TrialState.PRUNED:
            assert len(steps) < 3 or trial.intermediate_values[2] is not None
        else:
            # the shipped default is the mix: the content model reports its epochs, the
            # trial's value is the mix's at the point chosen on validation
            assert set(trial.user_attrs["content_mix"]) == {"tau", "slope", "scale", "slots"}
            assert 0.0 < trial.value <= 1.0 and trial.user_attrs["twin_epochs"] >= 1
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.name == f"trial_{trial.number:04d}" and run_dir.is_dir()
        for folder in (run_dir, run_dir / "twin", run_dir / "content"):
            assert not (folder / "checkpoints").exists()  # keep_checkpoints: false
    summary = json.loads((tuned["tmp"] / "reporting" / "tune_summary.json").read_text())
    assert summary["n_trials"] == N_TRIALS
    assert summary["states"]["PRUNED"] == states.count(TrialState.PRUNED)
    assert summary["best"]["number"] == study.best_trial.number
    assert summary["this_run"]["trials"] == list(range(N_TRIALS))
    print(
        f"tune: {summary['states']} in {summary['this_run']['seconds']} s, "
        f"best {summary['best']['value']:.4f} {summary['best']['params']}"
    )


def test_first_trial_is_the_finetune_defaults_and_the_best_is_no_worse(tuned):
    study, finetune = tuned["study"], tuned["finetune"]
    first = study.trials[0]
    assert first.user_attrs["enqueued"] == "defaults"
    assert first.params == {
        "optim.lr": finetune["optim"]["lr"],
        "model.embedding_dim": 16,
        "model.fusion.strategy": finetune["model"]["fusion"]["strategy"],
    }
    assert first.state == TrialState.COMPLETE  # the pruner's startup trial
    assert study.best_value >= first.value


def test_best_parameters_load_back_into_finetune_as_a_kedro_env(tuned):
    tuned_file = tuned["tmp"] / "conf" / "tuned" / "parameters_finetune.yml"
    assert tuned_file.exists()
    from crossrec.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    best = tuned["study"].best_params
    written = yaml.safe_load(tuned_file.read_text())
    assert written == {
        "finetune": {
            "optim": {"lr": best["optim.lr"]},
            "model": {
                "embedding_dim": best["model.embedding_dim"],
                "fusion": {"strategy": best["model.fusion.strategy"]},
            },
            "tuned_for": {
                "dataset": "synthetic_multimodal",
                "study": tuned["config"].study_name,
                "trial": tuned["study"].best_trial.number,
                "metric": "val/recall@20",
                "value": pytest.approx(tuned["study"].best_value),
            },
        }
    }
    # what `kedro run --pipelines finetune --env tuned` loads: base soft-merged with tuned
    loader = CONFIG_LOADER_CLASS(
        conf_source=str(tuned["tmp"] / "conf"), env="tuned", **CONFIG_LOADER_ARGS
    )
    config = FinetuneConfig.model_validate(loader["parameters"]["finetune"])
    assert config.optim.lr == pytest.approx(best["optim.lr"])
    assert config.model.embedding_dim == best["model.embedding_dim"]
    assert config.model.fusion.strategy == best["model.fusion.strategy"]
    # untuned settings are the base ones, tuning-only overrides (fixed) are not exported
    base_fusion = tuned["finetune"]["model"]["fusion"]
    assert config.model.fusion.attention_heads == base_fusion["attention_heads"]
    assert config.trainer.max_epochs == tuned["finetune"]["trainer"]["max_epochs"]
    assert config.loss.kind == tuned["finetune"]["loss"]["kind"]
    assert config.data.batch_size == 128
    assert config.tuned_for is not None and config.tuned_for.dataset == "synthetic_multimodal"
    # the run's own dataset passes the check; another one fails, naming the file and the fix
    params = {**loader["parameters"], "dataset": "synthetic_multimodal"}
    sources = {"finetune.tuned_for": "conf/tuned/parameters_finetune.yml"}
    check_tuned_for(params, sources)
    with pytest.raises(ConfigError) as error:
        check_tuned_for({**params, "dataset": "movielens100k_multimodal"}, sources)
    message = str(error.value)
    assert "finetune.tuned_for.dataset is 'synthetic_multimodal'" in message
    assert "set in conf/tuned/parameters_finetune.yml" in message
    assert "--pipelines tune --params dataset=movielens100k_multimodal" in message
    # the base block (untuned) has no record: nothing to check
    check_tuned_for({"finetune": tuned["finetune"], "dataset": "any"}, {})


def test_trials_table_and_plots_are_saved(tuned):
    import plotly.io

    report = tuned["tmp"] / "reporting"
    table = CSVDataset(filepath=str(report / "tune_trials.csv")).load()
    assert len(table) == N_TRIALS
    assert {"number", "state", "value", "params_optim.lr", "enqueued"} <= set(table.columns)
    # trial 0 is the enqueued defaults; the rest were sampled (an empty cell)
    assert table["enqueued"].fillna("").tolist() == ["defaults"] + [""] * (N_TRIALS - 1)
    for name in ("history", "importance", "parallel"):
        figure = plotly.io.read_json(report / f"{name}.json")
        assert figure.data, name


def test_bad_search_space_key_fails_before_any_trial(
    tmp_path, synthetic_ingested, synthetic_fused, tiny_finetune
):
    params = tune_params(tmp_path)
    params["search_space"]["optim.learning_rate"] = {"type": "float", "low": 0.1, "high": 1.0}
    inputs = {
        "interactions": synthetic_ingested["interactions"],
        "items": synthetic_ingested["items"],
        "dataset_info": synthetic_ingested["dataset_info"],
        **synthetic_fused,
        "params:tune": params,
        "params:finetune": tiny_finetune,
        "params:seed": 0,
        "params:dataset": "synthetic_multimodal",
    }
    with pytest.raises(ConfigError) as err:
        SequentialRunner().run(create_pipeline(), catalog(tmp_path, inputs))
    assert "optim.learning_rate" in str(err.value)
    assert "parameters_tune.yml" in str(err.value)
    assert not (tmp_path / "model_output").exists() and not (tmp_path / "runs").exists()


def test_shipped_parameters_validate():
    from crossrec.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    loader = CONFIG_LOADER_CLASS(conf_source=str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    config = validate_tuning(params["tune"], params["finetune"])
    assert config.storage.url.startswith("sqlite:///data/")
    assert params["dataset"] in config.storage.url and params["dataset"] in config.run_root
    assert len(config.search_space) >= 8


def test_llm_strategy_in_the_space_asks_for_item_texts(tiny_finetune):
    base = {"study_name": "s", "storage": {"url": "sqlite://"}, "n_trials": 1}
    with_llm = TuneConfig.model_validate(
        {
            **base,
            "search_space": {
                "model.fusion.strategy": {"type": "categorical", "choices": ["concat", "llm"]}
            },
        }
    )
    without = TuneConfig.model_validate(
        {**base, "search_space": {"optim.lr": {"type": "float", "low": 0.1, "high": 1.0}}}
    )
    assert needs_item_texts(with_llm, tiny_finetune)
    assert not needs_item_texts(without, tiny_finetune)


def test_bad_fixed_key_fails_naming_it(tiny_finetune):
    params = {
        "study_name": "s",
        "storage": {"url": "sqlite://"},
        "n_trials": 1,
        "search_space": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}},
        "fixed": {"trainer.max_epoch": 3},
    }
    with pytest.raises(ConfigError) as err:
        validate_tuning(params, tiny_finetune)
    assert "tune.fixed" in str(err.value) and "trainer.max_epoch" in str(err.value)
