"""Temporal replay: incremental refresh vs full retrain vs the model left as it was.

    .venv/bin/python benchmarks/refresh.py                               # movielens, CPU
    .venv/bin/python benchmarks/refresh.py --base 0.8 --step 0.05 --steps 4 --epochs 5
    .venv/bin/python benchmarks/refresh.py --seeds 2026,2027,2028 \
        --variant early_stop=epochs=10,patience=2,validate_on=new

Inputs are the ingest + featurize_modalities artifacts of ``--dataset`` read through the Kedro
catalog (``interactions``, ``items``, ``users``, ``dataset_info``, ``item_features``); ingest's
own split is ignored. The interactions are cut by timestamp (``_timeline.py``): the
base model trains on the first ``--base`` share, then each ``--step`` share arrives as an
increment (``_replay.replay``), and each model is tested on the slice that
comes next: the users the model's data knows (``known``, as in the first replays) and the
slice's new users (``new``: each folded in from the earliest ``--new-user-history-share`` of
their slice, default 0.5, the way a refresh folds in a new user, and tested on the rest;
``_newusers.py``), and both pooled (``all``: the 2% criterion and the paired
comparison are computed on these; per group too). Fuse and finetune settings come from
conf/base (``trainer.cpu_threads`` from ``--threads``); refresh fine-tunes ``--epochs``
epochs. Writes ``refresh_replay.csv`` (one row per slice, method and user group),
``refresh_replay.md`` and ``plots/refresh_replay.png`` under data/08_reporting/<dataset>/ and
prints the table. With several ``--seeds`` (seed of the valid labelling, training and ties; the
time cut is the same) the table holds per-step means and stds over seeds, and
``refresh_replay_paired.csv`` compares each incremental method with the full retrain user by
user (:func:`crossrec.evaluation.significance.paired_comparison`);
``refresh_replay_users.csv`` holds the per-user metrics. ``--variant
NAME=key=value[,key=value]`` adds an incremental method with those ``refresh`` settings
(e.g. ``epochs=10,patience=2,validate_on=new``).

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

import pandas as pd

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


def cell(column: str, value) -> str:
    if isinstance(value, str):
        return value
    if value != value:  # NaN: e.g. the std of one seed
        return ""
    if column in ("users", "better", "worse", "seeds") or column.startswith(
        ("tested_", "untestable")
    ):
        return f"{value:.0f}"
    if column.endswith(("_gap", "_outside")):
        return f"{value:+.1%}" if column == "method_gap" else f"{value:.1%}"
    return f"{value:.1f}" if column.endswith("_s") else f"{value:.4f}"


def markdown(table) -> str:
    cols = list(table.columns)
    lines = ["| test slice | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for index, row in table.iterrows():
        cells = [cell(c, v) for c, v in row.items()]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(frame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("recall@20", "ndcg@20"), strict=True):
        for method, rows in frame.groupby("method", sort=False):
            stats = rows.groupby("test_slice")[metric].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(
                stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=method
            )
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
    from _timeline import split_timeline, write_increment

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
    parser.add_argument("--seeds", default=None, help="comma list of seeds (overrides --seed)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default data/08_reporting/<ds>")
    parser.add_argument("--no-full-retrain", action="store_true", help="refresh variants only")
    parser.add_argument(
        "--new-user-history-share",
        type=float,
        default=None,
        help="share of a new user's slice they are folded in from (default: ReplaySettings')",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=history|random|key=value[,key=value]",
        help="an extra incremental method: new users' init, or refresh settings",
    )
    parser.add_argument("--write-timeline", type=Path, default=None, metavar="RAW_ROOT")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the tables and plot from the CSVs"
    )
    args = parser.parse_args()
    if args.report_only:
        out = args.out or ROOT / "data" / "08_reporting" / args.dataset
        frame = pd.read_csv(out / "refresh_replay.csv")
        users = pd.read_csv(out / "refresh_replay_users.csv")
        report(frame, users, sorted(frame["seed"].unique().tolist()), args, out)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("lightning", "lightning.pytorch", "crossrec.graphs", "crossrec.models.inputs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from _replay import ReplaySettings, replay, variant_config

    from crossrec.config import deep_merge
    from crossrec.data.increments import DatasetTables
    from crossrec.graphs.config import parse_fuse_params
    from crossrec.models.inputs import parse_finetune_config
    from crossrec.refresh.config import RefreshConfig

    inputs, params = load_inputs(args.dataset)
    if args.write_timeline is not None:
        write_timeline(
            DatasetTables(
                inputs["interactions"], inputs["items"], inputs["users"], inputs["dataset_info"]
            ),
            args,
        )
        return
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    refresh = RefreshConfig(epochs=args.epochs, new_users=args.new_users)
    tables = DatasetTables(
        inputs["interactions"], inputs["items"], inputs["users"], inputs["dataset_info"]
    )
    variants = tuple(parse_variant(v) for v in args.variant)
    for _, spec in variants:  # a bad variant fails now, not after the first seed's retrains
        variant_config(refresh, spec)
    out = args.out or ROOT / "data" / "08_reporting" / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    frames, users = [], []
    for seed in seeds:
        finetune = parse_finetune_config(
            deep_merge(params["finetune"], {"trainer": {"cpu_threads": args.threads, "seed": seed}})
        )
        share = {}
        if args.new_user_history_share is not None:
            share = {"new_user_history_share": args.new_user_history_share}
        settings = ReplaySettings(
            args.base,
            args.step,
            args.steps,
            seed,
            full_retrain=not args.no_full_retrain,
            variants=variants,
            **share,
        )
        with tempfile.TemporaryDirectory(prefix="refresh-replay-") as runs:
            result = replay(
                tables,
                inputs["item_features"],
                parse_fuse_params(params["fuse"]),
                finetune,
                refresh,
                settings,
                Path(runs),
            )
        frames.append(result.frame.assign(seed=seed))
        users.append(result.per_user.assign(seed=seed))
        # written after every seed: an interrupted run keeps the seeds already done
        report(pd.concat(frames), pd.concat(users), seeds[: len(frames)], args, out)


def parse_variant(text: str) -> tuple[str, dict | str]:
    """``NAME=history`` or ``NAME=key=value[,key=value]`` -> (name, new_users | overrides)."""
    name, _, spec = text.partition("=")
    if not name or not spec:
        sys.exit(f"--variant {text!r}: expected NAME=history|random or NAME=key=value[,...]")
    if "=" not in spec:
        return name, spec
    pairs = [p.partition("=") for p in spec.split(",")]
    bad = [p[0] for p in pairs if not p[1]]
    if bad:
        sys.exit(f"--variant {text!r}: {bad} is not key=value")
    return name, {k: None if v in ("null", "none") else v for k, _, v in pairs}


def report(frame, users, seeds: list[int], args, out: Path) -> None:
    """The CSVs, markdown tables and plot of the seeds done so far."""
    from _replay import ReplaySettings, group_table, in_group, seed_summary, summary_table

    from crossrec.evaluation.significance import paired_comparison, seed_noise

    share = args.new_user_history_share or ReplaySettings.new_user_history_share
    frame.to_csv(out / "refresh_replay.csv", index=False)
    users.to_csv(out / "refresh_replay_users.csv", index=False)
    several = len(seeds) > 1
    sections = []
    if "group" in frame:
        sections.append(
            "## recall@20 by user group: known / new / all (pooled)"
            + (" (means over seeds)" if several else "")
            + "; users tested per group, new users with < 2 usable interactions\n\n"
            + markdown(group_table(frame, "recall@20"))
        )
    for m, group in (("recall@20", "all"), ("ndcg@20", "all"), ("recall@20", "known")):
        table = seed_summary(frame, m, group) if several else summary_table(frame, m, group)
        sections.append(
            f"## {m}, {group} users" + (" (mean, std over seeds)" if several else "") + "\n\n"
        )
        sections[-1] += markdown(table)
    trained = [m for m in dict.fromkeys(frame["method"]) if m not in ("fold_in", "never")]
    paired = []
    groups = ("all", "known", "new") if "group" in users else ("known",)
    if "full_retrain" in trained:
        for method in (m for m in trained if m != "full_retrain"):
            for group in groups:
                if in_group(users, group).empty:
                    continue
                table = paired_comparison(in_group(users, group), method, "full_retrain")
                paired.append(table.assign(method=method, group=group))
                sections.append(
                    f"## {method} - full_retrain, recall@20, {group} users, paired over users "
                    "(seeds averaged)\n\n" + markdown(table)
                )
                if group == "all":
                    sections[-1] += "\n\n" + within(table, method)
    if paired:
        pd.concat(paired).to_csv(out / "refresh_replay_paired.csv")
    if several and "full_retrain" in trained:
        for method in (m for m in trained if m != "full_retrain"):
            table = seed_noise(in_group(frame, "all"), method)
            if not table.empty:
                sections.append(
                    f"## seed noise, recall@20, all users: {method} vs full_retrain of the same "
                    "seed, next to full_retrain vs full_retrain of another seed\n\n"
                    + markdown(table)
                    + "\n\n"
                    + noise_verdict(table, method)
                )
    header = (
        f"{args.dataset}: base {args.base:.0%} of the interactions by time, {args.steps} "
        f"increments of {args.step:.0%}; refresh {args.epochs} epochs, new users "
        f"{args.new_users}; new users folded in from the first {share:.0%} of their slice; "
        f"variants {args.variant}; "
        f"seeds {seeds}, {args.threads} CPU thread(s)\n\n"
    )
    (out / "refresh_replay.md").write_text(header + "\n\n".join(sections) + "\n")
    plot(in_group(frame, "all"), out / "plots" / "refresh_replay.png")
    print(header + "\n\n".join(sections))
    shown = ["seed", "test_slice", "method", "users", "items_known", "epochs", "wall_s"]
    print(in_group(frame, "all")[shown].to_string(index=False))


def noise_verdict(table, method: str, band: float = 0.02) -> str:
    """One line: is ``method`` farther from the full retrain than another seed's full retrain?"""
    return (
        f"{method} vs full_retrain (same seed), mean |gap| over steps and seeds: "
        f"{table['method_abs_gap'].mean():.1%}; full_retrain vs full_retrain (other seed): "
        f"{table['reference_abs_gap'].mean():.1%} (max {table['reference_max_gap'].max():.1%}; "
        f"{table['reference_outside'].mean():.0%} of seed pairs outside the {band:.0%} band)"
    )


def within(table, method: str, band: float = 0.02) -> str:
    """The refresh criterion on all users: ``method`` within ``band`` (relative, on the means)
    of the full retrain at every step."""
    gaps = table["relative"]
    ok = bool((gaps >= -band).all())
    steps = ", ".join(f"slice {k}: {v:+.1%}" for k, v in gaps.items())
    return f"{method} within {band:.0%} of full_retrain at every step (all users): {ok} ({steps})"


if __name__ == "__main__":
    main()
