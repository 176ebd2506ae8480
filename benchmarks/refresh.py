"""Temporal replay: incremental refresh vs full retrain vs the model left as it was.

    .venv/bin/python benchmarks/refresh.py                               # movielens, CPU
    .venv/bin/python benchmarks/refresh.py --base 0.8 --step 0.05 --steps 4 --epochs 5

Inputs are the ingest + featurize_modalities artifacts of ``--dataset`` read through the Kedro
catalog (``interactions``, ``items``, ``users``, ``dataset_info``, ``item_features``); ingest's
own split is ignored. The interactions are cut by timestamp (``crossrec.data.timeline``): the
base model trains on the first ``--base`` share, then each ``--step`` share arrives as an
increment (:func:`crossrec.refresh.replay.replay`), and each model is tested on the slice that
comes next. Fuse and finetune settings come from conf/base (``trainer.cpu_threads`` from
``--threads``); refresh fine-tunes ``--epochs`` epochs. Writes ``refresh_replay.csv``,
``refresh_replay.md`` and ``plots/refresh_replay.png`` under data/08_reporting/<dataset>/ and
prints the table.

``--write-timeline RAW_ROOT`` instead writes the same cut as a raw dataset folder for the Kedro
pipelines: ``RAW_ROOT/<dataset>/`` links every file of the original folder except
``ratings.csv``, which holds the base share only, and ``increments/0001..`` hold the increments
in the increment format (``crossrec.data.increments``). Then (README "Keep learning")::

    CROSSREC_DATA_DIR=RAW_ROOT kedro run --params ingest.media.allow_outside_dataset=true
    CROSSREC_DATA_DIR=RAW_ROOT kedro run --pipelines refresh --params ...
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_inputs(dataset: str) -> tuple[dict, dict]:
    """Catalog artifacts (ingest + featurize) and the project parameters of ``dataset``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT, runtime_params={"dataset": dataset}) as session:
        context = session.load_context()
        catalog = context.catalog
        names = ("interactions", "items", "users", "dataset_info", "item_features")
        missing = [n for n in names if not catalog.exists(n)]
        if missing:
            sys.exit(
                f"missing artifacts {missing} for {dataset}: run `kedro run --pipelines "
                f"ingest,featurize_modalities --params dataset={dataset}` first"
            )
        return {n: catalog.load(n) for n in names}, context.params


def markdown(table) -> str:
    cols = list(table.columns)
    lines = ["| test slice | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for index, row in table.iterrows():
        cells = [f"{v:.1f}" if c.endswith("_s") else f"{v:.4f}" for c, v in row.items()]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(frame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("recall@20", "ndcg@20"), strict=True):
        for method, rows in frame.groupby("method", sort=False):
            ax.plot(rows["test_slice"], rows[metric], marker="o", label=method)
        ax.set_xlabel("test slice (the increment after the model's data)")
        ax.set_ylabel(metric)
        ax.set_xticks(sorted(frame["test_slice"].unique()))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def write_timeline(tables, args) -> None:
    """The base as the dataset's ratings file, the increments as increment folders."""
    from crossrec.data.timeline import split_timeline, write_increment

    source = Path(os.environ.get("CROSSREC_DATA_DIR", ROOT / "data" / "01_raw")) / args.dataset
    target = args.write_timeline / args.dataset
    target.mkdir(parents=True, exist_ok=False)
    for entry in source.iterdir():
        if entry.name != "ratings.csv":
            (target / entry.name).symlink_to(entry.resolve())
    base, increments = split_timeline(tables, args.base, args.step, args.steps, args.seed)
    users = base.users.set_index("user_idx")["user_id"]
    items = base.items.set_index("item_idx")["item_id"]
    inter = base.interactions
    import pandas as pd

    pd.DataFrame(
        {
            "user_id": users.loc[inter["user_idx"]].to_numpy(),
            "movie_id": items.loc[inter["item_idx"]].to_numpy(),
            "rating": inter["rating"].to_numpy(),
            "unix_timestamp": inter["timestamp"].to_numpy(),
        }
    ).sort_values("unix_timestamp", kind="stable").to_csv(target / "ratings.csv", index=False)
    for k, inc in enumerate(increments, start=1):
        write_increment(inc, target / "increments" / f"{k:04d}")
    print(
        f"wrote {target}: base {len(inter)} ratings, increments "
        f"{[len(i.interactions) for i in increments]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--base", type=float, default=0.8)
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5, help="refresh fine-tuning epochs")
    parser.add_argument("--new-users", choices=("history", "random"), default="history")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default data/08_reporting/<ds>")
    parser.add_argument("--no-full-retrain", action="store_true", help="refresh variants only")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=history|random",
        help="an extra incremental method whose new users start as given",
    )
    parser.add_argument("--write-timeline", type=Path, default=None, metavar="RAW_ROOT")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("lightning", "lightning.pytorch", "crossrec.graphs", "crossrec.models.inputs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from crossrec.config import deep_merge
    from crossrec.data.increments import DatasetTables
    from crossrec.graphs.config import parse_fuse_params
    from crossrec.models.inputs import parse_finetune_config
    from crossrec.refresh.config import RefreshConfig
    from crossrec.refresh.replay import ReplaySettings, replay, summary_table

    inputs, params = load_inputs(args.dataset)
    if args.write_timeline is not None:
        write_timeline(
            DatasetTables(
                inputs["interactions"], inputs["items"], inputs["users"], inputs["dataset_info"]
            ),
            args,
        )
        return
    finetune = parse_finetune_config(
        deep_merge(
            params["finetune"], {"trainer": {"cpu_threads": args.threads, "seed": args.seed}}
        )
    )
    refresh = RefreshConfig(epochs=args.epochs, new_users=args.new_users)
    tables = DatasetTables(
        inputs["interactions"], inputs["items"], inputs["users"], inputs["dataset_info"]
    )
    variants = tuple(tuple(v.split("=", 1)) for v in args.variant)
    settings = ReplaySettings(
        args.base,
        args.step,
        args.steps,
        args.seed,
        full_retrain=not args.no_full_retrain,
        variants=variants,
    )
    with tempfile.TemporaryDirectory(prefix="refresh-replay-") as runs:
        frame = replay(
            tables,
            inputs["item_features"],
            parse_fuse_params(params["fuse"]),
            finetune,
            refresh,
            settings,
            Path(runs),
        )
    out = args.out or ROOT / "data" / "08_reporting" / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "refresh_replay.csv", index=False)
    tables_md = [
        f"## {m}\n\n" + markdown(summary_table(frame, m)) for m in ("recall@20", "ndcg@20")
    ]
    header = (
        f"{args.dataset}: base {args.base:.0%} of the interactions by time, {args.steps} "
        f"increments of {args.step:.0%}; refresh {args.epochs} epochs, new users "
        f"{args.new_users}; seed {args.seed}, {args.threads} CPU thread(s)\n\n"
    )
    (out / "refresh_replay.md").write_text(header + "\n\n".join(tables_md) + "\n")
    plot(frame, out / "plots" / "refresh_replay.png")
    print(header + "\n\n".join(tables_md))
    print(
        frame[
            ["test_slice", "method", "users", "users_known", "items_known", "epochs", "wall_s"]
        ].to_string(index=False)
    )


if __name__ == "__main__":
    main()
