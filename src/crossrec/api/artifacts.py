"""Load what serving needs through the project's Kedro catalog (the only Kedro code of serving),
so ``crossrec serve`` reads exactly the files ``kedro run`` wrote, for a dataset and env."""

from __future__ import annotations

from pathlib import Path

from crossrec.serving.config import ARTIFACTS, OPTIONAL_ARTIFACTS
from crossrec.serving.model import Artifacts


class MissingArtifactError(RuntimeError):
    """A catalog entry serving needs has no file yet: says which and what produces it."""


def _catalog_and_params(project_dir: Path, env: str | None, dataset: str | None):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_dir)
    runtime = {"dataset": dataset} if dataset else {}
    with KedroSession.create(project_path=project_dir, env=env, runtime_params=runtime) as s:
        context = s.load_context()
        return context.catalog, context.params


def latest_version(project_dir: Path, env: str | None, dataset: str | None) -> str | None:
    """The newest saved trained_model version (Kedro's timestamp folder), None if none."""
    catalog, _ = _catalog_and_params(project_dir, env, dataset)
    return _version(catalog)


def _version(catalog) -> str | None:
    dataset = catalog.get("trained_model")
    try:
        return dataset.resolve_load_version()
    except Exception:  # noqa: BLE001 - no version saved yet
        return None


def load_artifacts(
    project_dir: Path, env: str | None, dataset: str | None
) -> tuple[Artifacts, dict]:
    """(artifacts, recommend parameters) of the newest trained model."""
    catalog, params = _catalog_and_params(project_dir, env, dataset)
    version = _version(catalog)
    loaded = {}
    for name in ARTIFACTS:
        if not catalog.exists(name):
            if name in OPTIONAL_ARTIFACTS:
                loaded[name] = None
                continue
            producer = "finetune" if name == "trained_model" else "kedro run --to-nodes train_model"
            raise MissingArtifactError(
                f"{name} of dataset {params.get('dataset')!r} is missing (env {env or 'local'}); "
                f"run {producer} first"
            )
        loaded[name] = catalog.load(name)
    artifacts = Artifacts(**loaded, featurize=params.get("featurize_modalities"), version=version)
    return artifacts, params.get("recommend") or {}
