"""Side by side with Cornac 3.0.1: MostPop, BPR and VBPR on OUR split, scored by both tools.

    make bench-cornac                       # creates .venv-cornac, then runs this script
    .venv/bin/python benchmarks/vs_cornac.py --dataset movielens100k_multimodal

Runs in the project venv. It exports the ingest split (data/02_intermediate/<dataset>/) and an
item feature matrix for VBPR (image features from featurize's item_features.pkl, else a
precomputed matrix such as Last.fm's VGGish) to a temporary folder, then runs itself inside
``.venv-cornac`` (``--worker``): Cornac trains the three models, evaluates them with its own
``ranking_eval`` (timed) and writes every model's full score matrix. Back here, the same
score matrices go through crossrec's ``evaluate_ranking`` (timed, same protocol: train and
valid items masked, all items ranked, ties in evaluate's seeded order). One table: metrics per
model from each tool, and the wall time of each tool's ranking evaluation.

When evaluate has run (``data/07_model_output/<dataset>/per_user_metrics.parquet``), a second
table pairs crossrec's trained model (per-user values averaged over its seeds) with every Cornac
model, user by user, on ``test`` and — when ingest held out cold-start items — ``test_warm``
and ``test_cold`` (only warm / cold items compete): means and the Wilcoxon signed-rank p-value.

Our side of the same split (``--ours``, default MostPop, ItemKNN, MF-BPR, LightGCN, VBPR): the
baselines of ``conf/base/parameters_evaluate.yml`` through ``crossrec.evaluation.runner``, with
its selection (``--selection``: ``standalone`` searches the ItemKNN and MF-BPR grids on
validation, ``all`` also the finetune-kind ones such as LightGCN); the chosen configuration of
each is printed. ``--seeds 0,1,2`` runs every Cornac model and every trained baseline of ours
with each seed; the last table is mean ± std over seeds of both tools' models (our ranking code
for all), and a paired Wilcoxon test of our MF-BPR / VBPR / MostPop against Cornac's namesake.
LightGCN and VBPR need fuse's artifacts (``data/05_model_input/<dataset>/``); the others only
ingest's.

Cornac's VBPR needs torch; the side venv borrows the project venv's torch (its site-packages
directory is appended to ``sys.path`` after Cornac's own numpy / scipy are imported), so the
side venv stays small.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KS = (10, 20)


# --------------------------------------------------------------------------- Cornac side
def worker(folder: Path, torch_site: str | None, args: argparse.Namespace) -> None:
    """Runs inside .venv-cornac: train, evaluate with Cornac, dump score matrices."""
    import numpy as np
    import pandas as pd
    from cornac.data import ImageModality
    from cornac.eval_methods import BaseMethod
    from cornac.eval_methods.base_method import ranking_eval
    from cornac.metrics import NDCG, Precision, Recall
    from cornac.models import BPR, VBPR, MostPop

    def triples(name: str) -> list[tuple[str, str, float]]:
        frame = pd.read_csv(folder / f"{name}.tsv", sep="\t", dtype={"u": str, "i": str})
        return list(zip(frame["u"], frame["i"], frame["r"].astype(float), strict=True))

    meta = json.loads((folder / "meta.json").read_text())
    features_path = folder / "features.npy"
    features = np.load(features_path) if features_path.exists() else None
    item_ids = [str(i) for i in range(meta["n_items"])]
    image = ImageModality(features=features, ids=item_ids) if features is not None else None
    method = BaseMethod.from_splits(
        train_data=triples("train"),
        test_data=triples("test"),
        val_data=triples("valid"),
        exclude_unknowns=False,
        rating_threshold=1.0,
        seed=args.seed,
        verbose=False,
        item_image=image,
    )
    # Cornac sizes each split by the ids seen so far (train, test, then valid): items seen only
    # in valid would fall outside test_set's masks. Every split spans the whole catalogue here.
    for split in (method.test_set, method.val_set):
        split.num_items, split.num_users = method.total_items, method.total_users
    metrics = [m(k=k) for k in KS for m in (Recall, NDCG, Precision)]
    models = {
        "MostPop": MostPop(),
        "BPR": BPR(
            k=args.factors,
            max_iter=args.bpr_epochs,
            learning_rate=args.bpr_lr,
            lambda_reg=args.bpr_reg,
            seed=args.seed,
            verbose=False,
        ),
    }
    models = {name: model for name, model in models.items() if name in args.models.split(",")}
    chosen = {}
    if "BPR" in models and args.bpr_grid:
        models["BPR"], chosen["BPR"] = select_bpr(BPR, ranking_eval, Recall, method, args)
    if image is not None and "VBPR" in args.models.split(","):
        if torch_site:
            sys.path.append(torch_site)  # after numpy/scipy/cornac are imported from this venv
        models["VBPR"] = VBPR(
            k=args.factors // 2,
            k2=args.factors // 2,
            n_epochs=args.vbpr_epochs,
            batch_size=100,
            learning_rate=args.vbpr_lr,
            lambda_w=1.0,
            lambda_b=0.01,
            lambda_e=0.0,
            use_gpu=False,
            seed=args.seed,
        )
    uid = method.global_uid_map
    iid = method.global_iid_map
    user_order = np.array([uid[str(u)] for u in range(meta["n_users"]) if str(u) in uid])
    our_users = np.array([u for u in range(meta["n_users"]) if str(u) in uid])
    item_order = np.array([iid[str(i)] for i in range(meta["n_items"])])
    results = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(method.train_set, method.val_set)
        fit_s = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        avg, _ = ranking_eval(
            model,
            metrics,
            method.train_set,
            method.test_set,
            val_set=method.val_set,
            rating_threshold=1.0,
            exclude_unknowns=False,
        )
        eval_s, eval_cpu_s = time.perf_counter() - start, time.process_time() - cpu
        scores = np.full((meta["n_users"], meta["n_items"]), -np.inf, dtype=np.float32)
        for our_u, cornac_u in zip(our_users, user_order, strict=True):
            known = np.asarray(model.score(int(cornac_u)), dtype=np.float32)
            full = np.full(method.total_items, known.min(), dtype=np.float32)  # as Cornac's rank()
            full[: len(known)] = known
            scores[our_u] = full[item_order]
        np.save(folder / f"scores_{name}.npy", scores)
        results[name] = {
            "fit_s": fit_s,
            "eval_s": eval_s,
            "eval_cpu_s": eval_cpu_s,
            "metrics": {m.name: float(v) for m, v in zip(metrics, avg, strict=True)},
        }
        if name in chosen:
            results[name]["chosen"] = chosen[name]
        print(f"[cornac] {name}: fit {fit_s:.1f}s, ranking_eval {eval_s:.3f}s", flush=True)
    (folder / "cornac_results.json").write_text(json.dumps(results, indent=2))


def select_bpr(BPR, ranking_eval, Recall, method, args: argparse.Namespace):
    """Cornac's BPR tuned on validation: every (lr, reg) of ``--bpr-grid`` fitted for
    ``--bpr-epochs``, scored by Cornac's own ranking_eval (Recall@20 on the validation set,
    train masked); returns the best fitted model and its point with every point's value."""
    lrs, regs = (
        [float(v) for v in part.split("=")[1].split(",")] for part in args.bpr_grid.split(":")
    )
    trials, best, best_value = [], None, float("-inf")
    for lr in lrs:
        for reg in regs:
            model = BPR(
                k=args.factors,
                max_iter=args.bpr_epochs,
                learning_rate=lr,
                lambda_reg=reg,
                seed=args.seed,
                verbose=False,
            )
            model.fit(method.train_set, method.val_set)
            (value,), _ = ranking_eval(
                model, [Recall(k=20)], method.train_set, method.val_set, exclude_unknowns=False
            )
            trials.append({"lr": lr, "reg": reg, "valid": float(value)})
            if value > best_value:
                best, best_value = model, value
    point = max(trials, key=lambda t: t["valid"])
    print(f"[cornac] BPR chosen on validation: {point} from {trials}", flush=True)
    return best, {"point": point, "trials": trials}


# --------------------------------------------------------------------------- our side
def export_split(
    dataset: str, folder: Path, modality: str | None, features_file: str | None
) -> dict:
    """Our ingest split as Cornac triples (implicit: rating 1) and the VBPR feature matrix."""
    import numpy as np
    import pandas as pd

    base = ROOT / "data" / "02_intermediate" / dataset
    path = base / "interactions.parquet"
    if not path.exists():
        sys.exit(f"{path} not found: run `kedro run --pipelines ingest --params dataset={dataset}`")
    from crossrec.data.matrices import SPLITS, split_matrices

    inter = pd.read_parquet(path)
    info = json.loads((base / "dataset_info.json").read_text())
    items = pd.read_parquet(base / "items.parquet")
    matrices = split_matrices(inter, items, int(info["n_users"]), int(info["n_items"]))
    for name in SPLITS:
        part = inter[inter["split"] == name]
        pd.DataFrame({"u": part["user_idx"], "i": part["item_idx"], "r": 1.0}).to_csv(
            folder / f"{name}.tsv", sep="\t", index=False
        )
    if features_file:
        features, source = np.load(features_file), features_file
    else:
        features, source = load_features(dataset, modality)
    if features is not None:
        np.save(folder / "features.npy", features.astype(np.float32))
    meta = {"n_users": int(info["n_users"]), "n_items": int(info["n_items"]), "features": source}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta | {"matrices": matrices}


def load_features(dataset: str, modality: str | None):
    """(n_items, d) features for VBPR: featurize's item_features, else ingest's precomputed."""
    import numpy as np

    feature_dir = ROOT / "data" / "04_feature" / dataset
    candidates = [modality] if modality else ["image", "audio_vggish", "audio"]
    for file in ("item_features.pkl", "precomputed_features.pkl"):
        path = feature_dir / file
        if not path.exists():
            continue
        table = pickle.loads(path.read_bytes())
        for name in candidates:
            entry = table.get(name)
            if entry is None:
                continue
            vectors = np.asarray(entry["vectors"] if isinstance(entry, dict) else entry, np.float32)
            return vectors, f"{file}:{name}"
    print(
        f"no {candidates} features under {feature_dir}: VBPR skipped "
        "(run featurize_modalities first)",
        flush=True,
    )
    return None, None


def our_evaluation(folder: Path, meta: dict, names: list[str], repeats: int, tie_seed: int) -> dict:
    """Cornac's score matrices through crossrec's ranking code: timed on ``test``, plus the
    per-user values on every slice (for the paired comparison with our trained model)."""
    import numpy as np
    import torch

    from crossrec.metrics.ranking import mean_metrics, rank_and_evaluate, tie_break_order

    matrices = meta["matrices"]
    test, seen = matrices.test, (matrices.train + matrices.valid).tocsr()
    order = tie_break_order(matrices.n_items, tie_seed)
    slices = {"test": None}
    if matrices.is_cold.any():
        slices |= {"test_warm": ~matrices.is_cold, "test_cold": matrices.is_cold}
    out = {}
    for name in names:
        scores = torch.from_numpy(np.load(folder / f"scores_{name}.npy"))
        score_fn = lambda u, s=scores: s[u]  # noqa: E731
        times, cpu_times = [], []
        for _ in range(max(repeats, 1)):
            start, cpu = time.perf_counter(), time.process_time()
            users, per_user, _ = rank_and_evaluate(score_fn, test, seen, ks=KS, tie_order=order)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
        per_slice = {"test": (users, per_user)}  # the timed pass is the test slice
        for slice_name, candidates in slices.items():
            if candidates is not None:
                users, values, _ = rank_and_evaluate(
                    score_fn, test, seen, ks=KS, candidates=candidates, tie_order=order
                )
                per_slice[slice_name] = (users, values)
        out[name] = {
            "eval_s": float(np.median(times)),
            "eval_cpu_s": float(np.median(cpu_times)),
            "metrics": mean_metrics(per_user),
            "per_slice": per_slice,
        }
    return out


def paired_with_ours(per_user_path: Path, model: str, ours: dict) -> str:
    """crossrec's trained model (seed-averaged per user) vs each Cornac model, same users."""
    import numpy as np
    import pandas as pd

    from crossrec.evaluation.significance import paired_test

    table = pd.read_parquet(per_user_path)
    table = table[table["model"] == model]
    if table.empty:
        return f"{per_user_path}: no rows for model {model!r}"
    seeds = sorted(int(s) for s in table["seed"].unique())
    rows = [
        f"crossrec `{model}` (mean over seeds {seeds}) vs Cornac's models, paired over users; "
        "our ranking code for both, same split and tie order",
        "",
        "| slice | metric | Cornac model | users | crossrec | Cornac | diff | Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in ours.items():
        for slice_name, (users, values) in entry["per_slice"].items():
            part = table[table["slice"] == slice_name]
            if part.empty:
                continue
            for metric in ("recall@20", "ndcg@20"):
                mine = part.groupby("user_idx")[metric].mean()
                if not np.array_equal(mine.index.to_numpy(), users):
                    rows.append(f"| {slice_name} | {metric} | {name} | users differ: skipped |")
                    continue
                result = paired_test(mine.to_numpy(), values[metric], metric)
                rows.append(
                    f"| {slice_name} | {metric} | {name} | {result.n_users} | "
                    f"{result.mean_a:.4f} | {result.mean_b:.4f} | {result.mean_diff:+.4f} | "
                    f"{result.wilcoxon_p:.2e} |"
                )
    return "\n".join(rows)


def load_upstream(dataset: str, need_fuse: bool):
    """ingest's (and, for finetune-kind baselines, fuse's) artifacts as a TrainingArtifacts."""
    import pandas as pd

    from crossrec.models.inputs import TrainingArtifacts

    base = ROOT / "data" / "02_intermediate" / dataset
    fused = ROOT / "data" / "05_model_input" / dataset
    features, graphs, user_item = {}, {}, None
    if need_fuse:
        missing = [
            f
            for f in ("fused_item_features.pkl", "modality_graphs.pkl", "user_item_graph.pkl")
            if not (fused / f).exists()
        ]
        if missing:
            sys.exit(
                f"{fused}: {missing} not found (needed by LightGCN / VBPR / ContentOnly): run "
                f"`kedro run --pipelines ingest,featurize_modalities,fuse --params "
                f"dataset={dataset}` or leave them out of --ours"
            )
        features = pickle.loads((fused / "fused_item_features.pkl").read_bytes())
        graphs = pickle.loads((fused / "modality_graphs.pkl").read_bytes())
        user_item = pickle.loads((fused / "user_item_graph.pkl").read_bytes())
    texts_path = ROOT / "data" / "04_feature" / dataset / "item_texts.json"
    texts = json.loads(texts_path.read_text()) if texts_path.exists() else None
    return TrainingArtifacts(
        interactions=pd.read_parquet(base / "interactions.parquet"),
        items=pd.read_parquet(base / "items.parquet"),
        dataset_info=json.loads((base / "dataset_info.json").read_text()),
        fused_item_features=features,
        modality_graphs=graphs,
        user_item_graph=user_item,
        item_texts=texts,
    )


def our_baselines(args: argparse.Namespace, seeds: list[int]) -> dict:
    """Our baselines (evaluate's YAML, ``--ours`` only) on the same split: runner entries."""
    import yaml

    from crossrec.config import deep_merge, parse_params
    from crossrec.evaluation.config import EvaluateConfig
    from crossrec.evaluation.runner import Evaluation, prepare_split

    where = f"{args.params}: evaluate"
    raw = yaml.safe_load(Path(args.params).read_text())["evaluate"]
    names = [n for n in args.ours.split(",") if n]
    unknown = [n for n in names if n not in raw.get("baselines", {})]
    if unknown:
        sys.exit(f"--ours {unknown}: not baselines of {args.params} ({sorted(raw['baselines'])})")
    raw = deep_merge(
        raw,
        {
            "seeds": seeds,
            "selection": {"scope": args.selection},
            "slices": ["valid", "test", "test_warm", "test_cold"],
            "ablation": False,
            "history_quantiles": [],
            "tie_break": "random",
            "tie_break_seed": args.tie_seed,
            "baseline_defaults": {"trainer": {"cpu_threads": max(args.threads, 1)}},
        },
    )
    raw["baselines"] = {n: raw["baselines"][n] | {"enabled": True} for n in names}
    cfg = parse_params(EvaluateConfig, raw, where=where)
    need_fuse = any(spec.kind == "finetune" for spec in cfg.baselines.values())
    upstream = load_upstream(args.dataset, need_fuse)
    split = prepare_split(upstream.interactions, upstream.items, upstream.dataset_info, cfg)
    trainer = {"trainer": {"cpu_threads": max(args.threads, 1), "accelerator": "cpu"}}
    return Evaluation(cfg, split, upstream).baseline_runs({"config": trainer})


def seed_table(cornac_runs: dict, ours: dict, slices: list[str]) -> str:
    """mean ± std over seeds, both tools' models through our ranking code."""
    rows = [
        "| model | tool | seeds | "
        + " | ".join(f"{s} R@20 | {s} N@20" for s in slices)
        + " | configuration |",
        "|---|---|---|" + "---|---|" * len(slices) + "---|",
    ]

    import numpy as np

    def cell(values: list[float]) -> str:
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return f"{np.mean(values):.4f} ± {std:.4f}"

    for name, per_seed in cornac_runs.items():
        cells = []
        for slice_name in slices:
            for metric in ("recall@20", "ndcg@20"):
                values = [
                    float(np.mean(run["per_slice"][slice_name][1][metric]))
                    for run in per_seed.values()
                    if slice_name in run["per_slice"]
                ]
                cells.append(cell(values) if values else "-")
        points = [run.get("chosen", {}).get("point") for run in per_seed.values()]
        config = f"chosen on valid: {points}" if any(points) else "Cornac's (fixed)"
        rows.append(
            f"| {name} | Cornac | {list(per_seed)} | " + " | ".join(cells) + f" | {config} |"
        )
    for name, entry in ours.items():
        cells = []
        for slice_name in slices:
            for metric in ("recall@20", "ndcg@20"):
                values = [
                    float(np.mean(run[slice_name]["metrics"][metric]))
                    for run in entry["runs"]
                    if slice_name in run
                ]
                cells.append(cell(values) if values else "-")
        chosen = entry.get("selection", {}).get("chosen")
        config = (
            f"chosen on valid from {entry['selection']['grid_size']}: {chosen}"
            if chosen
            else "YAML"
        )
        rows.append(
            f"| {name} | crossrec | {entry['seeds']} | " + " | ".join(cells) + f" | {config} |"
        )
    return "\n".join(rows)


def paired_pairs(cornac_runs: dict, ours: dict, slices: list[str]) -> str:
    """Our baseline vs Cornac's namesake, per user (seed means), Wilcoxon."""
    import numpy as np

    from crossrec.evaluation.protocol import per_user_seed_mean
    from crossrec.evaluation.significance import paired_test

    rows = [
        "| slice | metric | ours | Cornac | users | ours mean | Cornac mean | diff | Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mine, theirs in (("MF-BPR", "BPR"), ("VBPR", "VBPR"), ("MostPop", "MostPop")):
        if mine not in ours or theirs not in cornac_runs:
            continue
        for slice_name in slices:
            runs = [r["per_slice"] for r in cornac_runs[theirs].values()]
            if slice_name not in ours[mine]["runs"][0] or slice_name not in runs[0]:
                continue
            for metric in ("recall@20", "ndcg@20"):
                users_a, a = per_user_seed_mean(ours[mine]["runs"], slice_name, metric)
                users_b = runs[0][slice_name][0]
                b = np.mean([r[slice_name][1][metric] for r in runs], axis=0)
                if not np.array_equal(users_a, users_b):
                    rows.append(f"| {slice_name} | {metric} | {mine} | {theirs} | users differ |")
                    continue
                t = paired_test(a, b, metric)
                rows.append(
                    f"| {slice_name} | {metric} | {mine} | {theirs} | {t.n_users} | "
                    f"{t.mean_a:.4f} | {t.mean_b:.4f} | {t.mean_diff:+.4f} | {t.wilcoxon_p:.2e} |"
                )
    return "\n".join(rows)


def print_table(cornac: dict, ours: dict) -> str:
    if not cornac:  # --models "": our baselines only
        return "(no Cornac model run: --models is empty)"
    names = [(m, m.lower()) for m in ("Recall", "NDCG", "Precision")]
    header = [f"{m}@{k}" for k in KS for m, _ in names]
    rows = [
        "| model | tool | " + " | ".join(header) + " | ranking eval wall (s) | cpu (s) |",
        "|---|---|" + "---|" * (len(header) + 2),
    ]
    for name in cornac:
        for tool, entry, which in (("Cornac", cornac[name], 0), ("crossrec", ours[name], 1)):
            values = [entry["metrics"][f"{pair[which]}@{k}"] for k in KS for pair in names]
            rows.append(
                f"| {name} | {tool} | "
                + " | ".join(f"{v:.4f}" for v in values)
                + f" | {entry['eval_s']:.4f} | {entry['eval_cpu_s']:.4f} |"
            )
    wall = [cornac[n]["eval_s"] / max(ours[n]["eval_s"], 1e-9) for n in cornac]
    cpu = [cornac[n]["eval_cpu_s"] / max(ours[n]["eval_cpu_s"], 1e-9) for n in cornac]
    return (
        "\n".join(rows)
        + f"\n\ncrossrec's ranking evaluation is {min(wall):.1f}x to {max(wall):.1f}x faster "
        f"(wall), {min(cpu):.1f}x to {max(cpu):.1f}x (cpu time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument(
        "--modality",
        default=None,
        help="VBPR feature (default: image, else audio_vggish, else audio)",
    )
    parser.add_argument(
        "--features", default=None, help="(n_items, d) .npy for VBPR instead of the artifacts"
    )
    parser.add_argument("--cornac-python", default=str(ROOT / ".venv-cornac" / "bin" / "python"))
    parser.add_argument("--models", default="MostPop,BPR,VBPR", help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=0, help="Cornac's seed (worker)")
    parser.add_argument(
        "--seeds", default="0", help="comma-separated seeds of every trained model, both tools"
    )
    parser.add_argument(
        "--ours",
        default="MostPop,ItemKNN,MF-BPR,LightGCN,VBPR",
        help="our baselines (names in --params) on the same split; empty = none",
    )
    parser.add_argument(
        "--selection",
        default="standalone",
        choices=["none", "standalone", "all"],
        help="evaluate.selection.scope for our baselines (all: LightGCN / VBPR grids too)",
    )
    parser.add_argument("--params", default=str(ROOT / "conf" / "base" / "parameters_evaluate.yml"))
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--bpr-epochs", type=int, default=200)
    parser.add_argument("--bpr-lr", type=float, default=0.01)
    parser.add_argument("--bpr-reg", type=float, default=0.001)
    parser.add_argument(
        "--bpr-grid",
        default=None,
        help="tune Cornac's BPR on validation, e.g. lr=0.01,0.05:reg=0.001,0.01 "
        "(default: the fixed --bpr-lr / --bpr-reg)",
    )
    parser.add_argument("--vbpr-epochs", type=int, default=30)
    parser.add_argument("--vbpr-lr", type=float, default=0.001)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of our evaluation")
    parser.add_argument(
        "--tie-seed", type=int, default=0, help="seed of the tie order (evaluate.tie_break_seed)"
    )
    parser.add_argument(
        "--per-user",
        default=None,
        help="evaluate's per_user_metrics.parquet (default: "
        "data/07_model_output/<dataset>/per_user_metrics.parquet when it exists)",
    )
    parser.add_argument("--model-name", default="crossrec", help="model to pair (evaluate's)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for our evaluation (default 1: Cornac's ranking_eval is a "
        "single-threaded Python loop; 0 = torch's default)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--torch-site", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.torch_site, args)
        return

    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not Path(args.cornac_python).exists():
        sys.exit(f"{args.cornac_python} not found: `make bench-cornac` creates .venv-cornac")
    torch_site = str(Path(torch.__file__).resolve().parents[1])
    seeds = [int(x) for x in args.seeds.split(",")]
    cornac_runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="crossrec-cornac-") as tmp:
        folder = Path(tmp)
        meta = export_split(args.dataset, folder, args.modality, args.features)
        print(
            f"exported {args.dataset}: {meta['n_users']} users x {meta['n_items']} items, "
            f"VBPR features: {meta['features']}",
            flush=True,
        )
        passthrough = [a for a in sys.argv[1:]]
        env = dict(os.environ, PYTHONNOUSERSITE="1")
        for seed in seeds:
            subprocess.run(
                [
                    args.cornac_python,
                    __file__,
                    *passthrough,
                    "--seed",
                    str(seed),
                    "--worker",
                    str(folder),
                    "--torch-site",
                    torch_site,
                ],
                check=True,
                env=env,
            )
            cornac = json.loads((folder / "cornac_results.json").read_text())
            ours = our_evaluation(folder, meta, list(cornac), args.repeats, args.tie_seed)
            for name, entry in ours.items():
                chosen = cornac[name].get("chosen", {})
                cornac_runs.setdefault(name, {})[seed] = entry | {"chosen": chosen}
            if seed == seeds[0]:
                first = (cornac, ours)
    cornac, ours = first
    print(f"\n{args.dataset}, seed {seeds[0]}: same split, same score matrices\n")
    print(print_table(cornac, ours))
    print("\nCornac: fit time " + ", ".join(f"{n} {c['fit_s']:.1f}s" for n, c in cornac.items()))
    if args.ours:
        start = time.perf_counter()
        mine = our_baselines(args, seeds)
        slices = ["test"] + (["test_warm", "test_cold"] if meta["matrices"].is_cold.any() else [])
        print(
            f"\n{args.dataset}: Cornac's models and our baselines, same split and protocol "
            f"(full ranking, train + valid masked, tie seed {args.tie_seed}); mean ± std over "
            f"seeds; our selection scope {args.selection!r} ({time.perf_counter() - start:.0f}s "
            "for our side)\n"
        )
        print(seed_table(cornac_runs, mine, slices))
        for name, entry in mine.items():
            if "selection" in entry:
                trials = ", ".join(
                    f"{t['config']}: {t['valid']:.4f}" for t in entry["selection"]["trials"]
                )
                print(f"\n{name} selection ({entry['selection']['metric']}): {trials}")
        print("\n" + paired_pairs(cornac_runs, mine, slices))
    per_user = Path(
        args.per_user
        or ROOT / "data" / "07_model_output" / args.dataset / "per_user_metrics.parquet"
    )
    if per_user.exists():
        print("\n" + paired_with_ours(per_user, args.model_name, ours))
    else:
        print(f"\n{per_user} not found: run `kedro run --pipelines evaluate` to pair with crossrec")


if __name__ == "__main__":
    main()
