"""``crossrec serve``: serve the newest trained model of a dataset (or a synthetic catalogue)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="crossrec serve",
        description="HTTP API + web page over the newest trained model (OpenAPI docs at /docs).",
    )
    parser.add_argument("--dataset", default=None, help="dataset name (default: globals.yml)")
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument(
        "--index",
        choices=["auto", "exact", "ann", "ivf", "hnsw"],
        default="auto",
        help="item search: auto = recommend.ann.kind from recommend.ann.min_items items on, "
        "else exact; ann = recommend.ann.kind always",
    )
    parser.add_argument(
        "--synthetic-items",
        type=int,
        default=None,
        help="serve a random catalogue of this many items instead (benchmarks)",
    )
    parser.add_argument("--synthetic-users", type=int, default=1000)
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def build_holder(args: argparse.Namespace):
    from crossrec.api.app import ModelHolder

    index = None if args.index == "auto" else args.index
    if args.synthetic_items:
        from crossrec.serving.synthetic import synthetic_serving

        return ModelHolder(
            lambda: synthetic_serving(args.synthetic_items, args.synthetic_users, index_kind=index),
            None,
        )
    from crossrec.api.artifacts import latest_version, load_artifacts
    from crossrec.serving.model import ServingModel

    project = args.project_dir.resolve()

    def load():
        artifacts, params = load_artifacts(project, args.env, args.dataset)
        return ServingModel.from_artifacts(artifacts, params, index_kind=index)

    return ModelHolder(load, lambda: latest_version(project, args.env, args.dataset))


def undeclared_dataset(project: Path, env: str | None, dataset: str | None) -> str | None:
    """Why ``dataset`` cannot be served when no ingest parameters declare it (None when they
    do): a missing model of an unknown dataset is a typo, not a missing finetune run."""
    from crossrec.api.artifacts import _catalog_and_params
    from crossrec.data.config import unknown_dataset_message

    if dataset is None:
        return None
    _, params = _catalog_and_params(project.resolve(), env, dataset)
    declared = list((params.get("ingest") or {}).get("datasets") or {})
    return None if dataset in declared else unknown_dataset_message(dataset, declared)


def single_threaded_math() -> None:
    """One BLAS / torch thread per request: concurrent requests are the parallelism, and a
    multi-threaded matmul or sort per request only oversubscribes the cores. The variables
    reach BLAS only if it is not loaded yet."""
    import os

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import torch

    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> int:
    single_threaded_math()
    import uvicorn

    from crossrec.api.app import api_key_from_env, create_app
    from crossrec.api.artifacts import MissingArtifactError

    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        key = api_key_from_env(args.host)
        holder = build_holder(args)
    except (RuntimeError, MissingArtifactError) as err:
        unknown = undeclared_dataset(args.project_dir, args.env, args.dataset)
        print(f"crossrec serve: {unknown or err}", file=sys.stderr)
        return 2
    app = create_app(holder, api_key=key)
    print(
        f"crossrec serve: model {holder.current.version} on http://{args.host}:{args.port}/ "
        f"(docs at /docs)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
