"""Load what serving needs through the project's Kedro catalog (the only Kedro code of serving),
so ``crossrec serve`` reads exactly the files ``kedro run`` wrote, for a dataset and env."""

from __future__ import annotations

from pathlib import Path

from crossrec.graphs.config import parse_fuse_params
from crossrec.refresh.state import serving_artifacts
from crossrec.serving.config import ARTIFACTS, OPTIONAL_ARTIFACTS
from crossrec.serving.model import Artifacts

#: prefix of a served refreshed_model version (``crossrec serve`` prints it, /api/model shows it)
REFRESH_TAG = "refresh-"


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
    """The version serving would load now: the newest refreshed_model version when it is newer
    than the newest trained_model version (Kedro timestamps sort as text), else the latter."""
    catalog, _ = _catalog_and_params(project_dir, env, dataset)
    return newest_version(_version(catalog), _version(catalog, "refreshed_model"))


def newest_version(trained: str | None, refreshed: str | None) -> str | None:
    """The newer of two Kedro version stamps (they sort as text), a refreshed one tagged."""
    if refreshed is not None and (trained is None or refreshed > trained):
        return f"{REFRESH_TAG}{refreshed}"
    return trained


def _version(catalog, name: str = "trained_model") -> str | None:
    dataset = catalog.get(name)
    try:
        return dataset.resolve_load_version()
    except Exception:  # noqa: BLE001 - no version saved yet
        return None


def load_artifacts(
    project_dir: Path, env: str | None, dataset: str | None
) -> tuple[Artifacts, dict]:
    """(artifacts, recommend parameters) of the newest model: the trained model, or the newest
    refreshed_model version of its chain (``crossrec.refresh.state.serving_artifacts``)."""
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
    refreshed = catalog.load("refresh_previous")  # the newest version, or None
    loaded, is_refresh = serving_artifacts(loaded, refreshed, parse_fuse_params(params["fuse"]))
    if is_refresh:
        version = f"{REFRESH_TAG}{_version(catalog, 'refreshed_model')}"
    artifacts = Artifacts(**loaded, featurize=params.get("featurize_modalities"), version=version)
    return artifacts, params.get("recommend") or {}
