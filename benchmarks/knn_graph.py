"""Modality kNN item graphs: exact against approximate (faiss) search, and what the
approximation does to the trained model.

    # build time, peak memory and recall@10 on clustered synthetic vectors, one CPU thread
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/knn_graph.py speed \
        --items 10000,100000 --dims 64,768 --methods exact,hnsw,ivf
    # the default model trained on the exact graphs and on approximate ones (threshold 0)
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/knn_graph.py quality \
        --dataset movielens100k_multimodal --seeds 2026,2027,2028

``speed`` runs every (items, dims, method) in its own process so that its peak resident memory
(``ru_maxrss``) is its own: the table shows the peak above the process's footprint once the
vectors are loaded (the input itself, ``items x dims x 4`` bytes, is not counted). The vectors
are clustered with a low intrinsic dimension, like content embeddings: unequal clusters in a
32-d latent space mapped linearly to ``dims`` plus isotropic noise. Exact search above
``--exact-max-items`` is not run to the end: its time is the time of scoring
``--exact-sample-rows`` rows against all items, scaled to every row (marked "est."; the cost
of exact search is the same for every row). Recall@10 of approximate search is measured as
fuse measures it (``crossrec.graphs.ann.sampled_recall``: exact top-10 of 1,000 seeded items).

``quality`` reads a dataset's fuse artifacts like ``benchmarks/warm_ablation.py`` (run
``kedro run --pipelines ingest,featurize_modalities,fuse --params dataset=<name>`` once),
rebuilds its modality graphs with conf/base/parameters_fuse.yml twice (``search: exact`` and
``search: approximate``; ``--variants exact,approximate,exact:index`` adds the exact graph
with equally similar neighbours taken by item index instead of train interactions), trains the
finetune defaults on each with the same seeds (one CPU thread, early stopping on validation
Recall@20), then prints warm_ablation's table with the paired Wilcoxon test of every graph
against the exact one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def clustered_vectors(n_items: int, dims: int, seed: int = 0, latent: int = 32):
    """Clustered vectors of low intrinsic dimension (about 100 items per cluster on average,
    unequal cluster sizes), float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_clusters = max(1, n_items // 100)
    sizes = rng.pareto(1.5, n_clusters) + 1
    cluster = rng.choice(n_clusters, size=n_items, p=sizes / sizes.sum())
    centres = rng.normal(size=(n_clusters, latent)).astype(np.float32)
    points = centres[cluster] + 0.6 * rng.normal(size=(n_items, latent)).astype(np.float32)
    mixing = rng.normal(size=(latent, dims)).astype(np.float32) / np.sqrt(latent)
    out = points @ mixing
    for start in range(0, n_items, 65536):  # the noise in blocks: memory stays ~ the output
        stop = min(start + 65536, n_items)
        out[start:stop] += 0.1 * rng.normal(size=(stop - start, dims)).astype(np.float32)
    return out


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _settings(method: str):
    from crossrec.graphs.ann import AnnSettings
    from crossrec.graphs.config import ApproximateKnnConfig

    defaults = ApproximateKnnConfig().model_dump()
    return AnnSettings(**{**defaults, "index": method if method != "exact" else "hnsw"})


def run_case(path: str, method: str, k: int, exact_rows: int | None) -> dict:
    """One measurement, in this process: build time, peak memory above the loaded vectors,
    recall@k (1 for exact search)."""
    import faiss  # noqa: F401  (imported before the baseline so it is not counted)
    import numpy as np
    import torch

    from crossrec.graphs.knn import DEFAULT_CHUNK_BYTES, knn_graph, knn_search_info

    torch.set_num_threads(1)
    warm = clustered_vectors(300, 8, seed=1)  # lazy imports and first allocations: baseline
    knn_graph(warm, None, 5, search="exact")
    knn_graph(warm, None, 5, search="approximate", approximate=_settings(method))
    vectors = np.load(path)
    baseline = _rss_mib()
    n_items = len(vectors)
    if method == "exact" and exact_rows is not None:
        # score exact_rows rows against every item as knn_graph does, time scaled to all rows
        start = time.perf_counter()
        feats = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        feats = feats / feats.norm(dim=1, keepdim=True)
        chunk = max(1, DEFAULT_CHUNK_BYTES // (4 * n_items))
        prep = time.perf_counter() - start
        start = time.perf_counter()
        with torch.inference_mode():
            for first in range(0, exact_rows, chunk):
                block = feats[first : min(first + chunk, exact_rows)] @ feats.T
                torch.topk(block, k + 1, dim=1)
        seconds = prep + (time.perf_counter() - start) * n_items / exact_rows
        return {"seconds": seconds, "estimated": True, "recall": 1.0, "peak_mib": 0.0}
    start = time.perf_counter()
    if method == "exact":
        graph = knn_graph(vectors, None, k, search="exact")
    else:
        graph = knn_graph(vectors, None, k, search="approximate", approximate=_settings(method))
    seconds = time.perf_counter() - start
    info = knn_search_info(graph)
    check = info.get("recall_seconds", 0.0)
    return {
        "seconds": seconds - check,
        "recall_seconds": check,
        "estimated": False,
        "recall": info.get("recall_at_k") if method != "exact" else 1.0,
        "peak_mib": _rss_mib() - baseline,
    }


def speed(args: argparse.Namespace) -> None:
    import numpy as np

    items = [int(x) for x in args.items.split(",")]
    dims = [int(x) for x in args.dims.split(",")]
    methods = args.methods.split(",")
    s = _settings("hnsw")
    print(
        f"k={args.k}; hnsw M={s.hnsw_m} efConstruction={s.hnsw_ef_construction} "
        f"efSearch={s.hnsw_ef_search}; ivf nlist=4 sqrt(n) nprobe={s.ivf_nprobe}; "
        f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    head = "| items | dims | search | graph s | peak MiB above input | recall@10 | recall check s |"
    print(head + "\n|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n_items in items:
            for d in dims:
                path = str(Path(tmp) / f"v_{n_items}_{d}.npy")
                np.save(path, clustered_vectors(n_items, d, seed=args.seed))
                for method in methods:
                    sample = None
                    if method == "exact" and n_items > args.exact_max_items:
                        sample = min(args.exact_sample_rows, n_items)
                    cmd = [sys.executable, __file__, "_case", path, method, str(args.k)]
                    cmd += [str(sample)] if sample else []
                    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if done.returncode != 0:
                        print(f"| {n_items:,} | {d} | {method} | failed: {done.stderr[-300:]} |")
                        continue
                    res = json.loads(done.stdout.strip().splitlines()[-1])
                    label = {"exact": "exact", "hnsw": "HNSW-Flat", "ivf": "IVF-Flat"}[method]
                    secs = f"{res['seconds']:.1f}" + (
                        f" (est., {sample:,} rows scored)" if res["estimated"] else ""
                    )
                    peak = "-" if res["estimated"] else f"{res['peak_mib']:.0f}"
                    recall = "1 (by definition)" if method == "exact" else f"{res['recall']:.3f}"
                    check = "-" if method == "exact" else f"{res['recall_seconds']:.1f}"
                    print(
                        f"| {n_items:,} | {d} | {label} | {secs} | {peak} | {recall} | {check} |",
                        flush=True,
                    )
                os.remove(path)


def quality(args: argparse.Namespace) -> None:
    import logging

    import numpy as np
    import yaml

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import warm_ablation as wa

    from crossrec.config import deep_merge
    from crossrec.evaluation.protocol import build_split, ranking_slices
    from crossrec.graphs.config import parse_fuse_params
    from crossrec.graphs.fuse import build_modality_graphs, train_item_degrees
    from crossrec.graphs.knn import knn_search_info

    logging.basicConfig(level=logging.WARNING)
    arts = wa.load_artifacts(args.data_dir, args.dataset)
    fuse = yaml.safe_load((ROOT / "conf/base/parameters_fuse.yml").read_text())["fuse"]
    degrees = train_item_degrees(arts["interactions"], int(arts["dataset_info"]["n_items"]))
    variants = args.variants.split(",")
    graphs = {}
    for variant in variants:  # search[:ties], e.g. exact, approximate, exact:index
        search, _, ties = variant.partition(":")
        knn = {**fuse["knn"], "search": search, "device": "cpu", "ties": ties or "popular"}
        graphs[variant] = build_modality_graphs(
            arts["fused_item_features"], parse_fuse_params({**fuse, "knn": knn}), degrees
        )
    for variant in variants[1:]:  # each graph against the first (the reference)
        for name, reference in graphs[variants[0]].items():
            other, stored = graphs[variant][name], arts["modality_graphs"].get(name)
            info = knn_search_info(other)
            recall = (
                f"recall@{info['k']} {info['recall_at_k']:.4f} on "
                f"{info['recall_sampled_items']:,} sampled items; "
                if info.get("recall_at_k") is not None
                else ""
            )
            same_edges = reference.multiply(other > 0).nnz / max(reference.nnz, 1)
            print(
                f"{variant} {name}: {info['items']:,} items ({info['distinct']:,} distinct "
                f"vectors), k={info['k']}, {recall}{same_edges:.2%} of the {variants[0]} "
                f"graph's edges; equals the stored graph: "
                f"{stored is not None and (other != stored).nnz == 0}",
                flush=True,
            )
    base = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    trainer = {"cpu_threads": 1, "max_epochs": args.max_epochs, "patience": args.patience}
    config = deep_merge(base, {"trainer": {**trainer, "accelerator": "cpu"}})
    info = arts["dataset_info"]
    split = build_split(
        arts["interactions"], arts["items"], int(info["n_users"]), int(info["n_items"]), 0
    )
    slices = ranking_slices(split, ["valid", "test", "test_warm", "test_cold"])
    main = wa.main_slice_name(split)
    results: dict[str, list[dict]] = {}
    for search in variants:
        variant = {**arts, "modality_graphs": graphs[search]}
        results[search] = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            res = wa.train_and_score(variant, config, seed, slices, split)
            results[search].append(res)
            recall = float(np.mean(res["slices"][main]["recall@20"]))
            print(
                f"{search} seed {seed}: {main} R@20 {recall:.4f} "
                f"({res['epochs']} epochs, {res['train_s']:.0f}s)",
                flush=True,
            )
    print(f"\n{args.dataset}, seeds {args.seeds}, main slice {main}")
    wa.print_table(results, main, variants[0])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_case":
        sys.path.insert(0, str(ROOT / "src"))
        path, method, k, *rows = sys.argv[2:]
        res = run_case(path, method, int(k), int(rows[0]) if rows else None)
        print(json.dumps(res))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("speed", help="build time, memory and recall on synthetic vectors")
    sp.add_argument("--items", default="10000,100000")
    sp.add_argument("--dims", default="64,768")
    sp.add_argument("--methods", default="exact,hnsw,ivf")
    sp.add_argument("--k", type=int, default=10)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--exact-max-items", type=int, default=100_000)
    sp.add_argument("--exact-sample-rows", type=int, default=5000)
    qp = sub.add_parser("quality", help="the default model on exact vs approximate graphs")
    qp.add_argument("--dataset", default="movielens100k_multimodal")
    qp.add_argument("--data-dir", type=Path, default=ROOT / "data")
    qp.add_argument("--seeds", default="2026")
    qp.add_argument("--max-epochs", type=int, default=100)
    qp.add_argument("--patience", type=int, default=8)
    qp.add_argument(
        "--variants", default="exact,approximate",
        help="graphs to train on, search[:ties] (fuse.knn.ties: popular by default, or index); "
        "the first is the reference of the paired tests",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    speed(args) if args.command == "speed" else quality(args)


if __name__ == "__main__":
    main()
