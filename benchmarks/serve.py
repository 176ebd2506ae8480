"""Latency of `crossrec serve`: a real uvicorn server on loopback, a real HTTP client.

    .venv/bin/python benchmarks/serve.py                       # movielens + 1M synthetic
    .venv/bin/python benchmarks/serve.py --skip-synthetic --requests 300
    .venv/bin/python benchmarks/serve.py --skip-synthetic --words    # + requests in words

Per scenario it starts ``python -m crossrec serve`` in a subprocess, waits for /api/health,
then asks for top-20 lists of random known users (seen items excluded) at each concurrency
(threads, one keep-alive connection each), bounded by ``--requests`` and ``--seconds`` per
level, after a short warm-up. It prints p50 / p99 latency (ms) and requests/s per level.

Scenarios: the trained model of ``--dataset`` (needs ``kedro run --to-nodes train_model``),
and a synthetic catalogue of ``--synthetic-items`` items searched exactly and with the ANN
index (``recommend.ann.kind``: by default IVF-Flat, or HNSW when IVF has to widen and HNSW
answers the recall sample faster); for those two, recall@20 of the ANN lists
against the exact lists of the same users (over HTTP) is printed too. ``--compare-index`` does
the same for the trained model's own catalogue, and ``--project-dir`` serves a model of another
Kedro project (e.g. ``benchmarks/scale.py``'s scratch project)::

    .venv/bin/python benchmarks/serve.py --skip-synthetic --compare-index --dataset scale_1e7 \
        --project-dir ../scale-data/project ``--fold-in`` adds how
close fold-in gets to the trained user vectors (held-out test items of each user; in-process,
no server).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, *args: str, startup_s: float = 900):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "crossrec", "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        start, deadline = time.time(), time.time() + startup_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited: {self.process.stderr.read()[-3000:]}")
            try:
                if requests.get(self.url + "/api/health", timeout=2).ok:
                    self.startup_s = time.time() - start
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"server did not start within {startup_s} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(
    url: str,
    users: list[str],
    concurrency: int,
    n: int,
    seconds: float,
    queries: list[str] | None = None,
) -> dict:
    """p50/p99 latency (ms) and throughput of GET top-20 for random users (with ``queries``:
    each request also carries random words, ``q=``).

    The client is asyncio + aiohttp (one keep-alive connection per concurrent caller): a
    thread per caller with ``requests`` costs more CPU per request than the server's answer,
    and client and server share the same cores here."""
    import asyncio

    import aiohttp

    latencies: list[float] = []
    errors: list[int] = []

    async def caller(session, seed: int, budget: list[int], deadline: float) -> None:
        rng = random.Random(seed)
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            user = rng.choice(users)
            params = {"k": "20"} if not queries else {"k": "20", "q": rng.choice(queries)}
            t0 = time.perf_counter()
            async with session.get(
                f"{url}/api/users/{user}/recommendations", params=params
            ) as response:
                await response.read()
                status = response.status
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(
                *(
                    caller(session, 10_000 + i, [2], time.perf_counter() + 60)
                    for i in range(min(20, concurrency * 2))
                )
            )  # warm-up
            latencies.clear()
            budget, start = [n], time.perf_counter()
            deadline = start + seconds
            await asyncio.gather(
                *(caller(session, i, budget, deadline) for i in range(concurrency))
            )
            return time.perf_counter() - start

    wall = asyncio.run(run())
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(ms),
        "errors": len(errors),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "req_per_s": round(len(ms) / wall, 1),
    }


def top_lists(url: str, users: list[str]) -> list[list[str]]:
    session = requests.Session()
    return [
        [
            i["item_id"]
            for i in session.get(f"{url}/api/users/{u}/recommendations", params={"k": 20}).json()[
                "items"
            ]
        ]
        for u in users
    ]


def scenario(name: str, args: list[str], opts, lists_for: int = 0) -> tuple[list[dict], list]:
    server = Server(*args)
    try:
        users = requests.get(server.url + "/api/users", params={"limit": 1000}).json()["user_ids"]
        card = requests.get(server.url + "/api/model").json()
        print(
            f"\n{name}: {card['n_items']} items, {card['n_users']} users, index {card['index']} "
            f"(recall measured at start-up: {card.get('index_recall')}; "
            f"choice: {card.get('index_choice')}), started in {server.startup_s:.1f} s",
            flush=True,
        )
        rows = []
        queries = word_queries(opts.dataset) if opts.words and not lists_for else []
        if queries:  # the words model is fitted on the first request in words: not timed
            t0 = time.perf_counter()
            requests.get(
                f"{server.url}/api/users/{users[0]}/recommendations",
                params={"q": queries[0]},
                timeout=1800,
            ).raise_for_status()
            print(f"words model fitted on the first q= request: {time.perf_counter() - t0:.1f} s")
        for c in opts.concurrency:
            for kind, words in (("top-20", None), ("top-20 + q=", queries)):
                if kind != "top-20" and not words:
                    continue
                row = {
                    "scenario": name,
                    "index": card["index"],
                    "request": kind,
                    **measure(server.url, users, c, opts.requests, opts.seconds, words),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
        lists = top_lists(server.url, users[:lists_for]) if lists_for else []
        return rows, lists
    finally:
        server.stop()


def word_queries(dataset: str, limit: int = 2000) -> list[str]:
    """Test requests in words of the dataset (ingest's word_requests), for ``q=``."""
    import pandas as pd

    path = ROOT / "data" / "03_primary" / dataset / "word_requests.parquet"
    if not path.is_file():
        return []
    table = pd.read_parquet(path)
    return table.loc[table["split"] == "test", "text"].astype(str).unique()[:limit].tolist()


def encoder_share(opts, queries: list[str]) -> dict:
    """In-process: ms to encode one request's words vs ms for the whole words scoring."""
    from crossrec.api.artifacts import load_artifacts
    from crossrec.serving import service
    from crossrec.serving.model import ServingModel
    from crossrec.serving.words import words_model

    artifacts, params = load_artifacts(ROOT, opts.env, opts.dataset)
    serving = ServingModel.from_artifacts(artifacts, params)
    model = words_model(serving)
    user = serving.catalogue.user_ids[0]
    sample = queries[:200]
    t0 = time.perf_counter()
    for q in sample:
        model.encoder.encode([q])
    encode_ms = 1000 * (time.perf_counter() - t0) / len(sample)
    t0 = time.perf_counter()
    for q in sample:
        service.recommend_user_words(serving, user, q, 20, True, {})
    total_ms = 1000 * (time.perf_counter() - t0) / len(sample)
    out = {"encode_ms": round(encode_ms, 2), "answer_ms": round(total_ms, 2),
           "encoder_share": round(encode_ms / total_ms, 3)}
    print(f"words, in process ({len(sample)} requests): {json.dumps(out)}", flush=True)
    return out


def fold_in_report(opts) -> dict:
    from crossrec.api.artifacts import load_artifacts
    from crossrec.data.matrices import split_matrices
    from crossrec.serving.config import FoldInConfig
    from crossrec.serving.foldin import fold_in_agreement
    from crossrec.serving.model import ServingModel

    artifacts, params = load_artifacts(ROOT, opts.env, opts.dataset)
    serving = ServingModel.from_artifacts(artifacts, params)
    info = artifacts.dataset_info
    n_users, n_items = int(info["n_users"]), int(info["n_items"])
    train = serving.data.train
    test = split_matrices(artifacts.interactions, artifacts.items, n_users, n_items).test
    rng = np.random.default_rng(0)
    users = rng.choice(
        serving.catalogue.n_users, size=min(300, serving.catalogue.n_users), replace=False
    )
    history = [train[u].indices for u in users]
    truth = [test[u].indices for u in users]
    out = {}
    for method in ("mean", "solve"):
        config = FoldInConfig(**{**params.get("fold_in", {}), "method": method})
        t0 = time.perf_counter()
        out[method] = fold_in_agreement(serving.catalogue, users, history, truth, config)
        out[method]["ms_per_user"] = round(1000 * (time.perf_counter() - t0) / len(users), 2)
        print(f"fold-in {method}: {json.dumps(out[method])}", flush=True)
    return out


def print_recall(approx: list[list[str]], exact: list[list[str]]) -> None:
    recall = np.mean(
        [len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True) if e]
    )
    print(f"ANN recall@20 vs exact over {len(exact)} users: {recall:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--env", default=None)
    parser.add_argument("--requests", type=int, default=500, help="per concurrency level")
    parser.add_argument("--seconds", type=float, default=30, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--synthetic-items", type=int, default=1_000_000)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-dataset", action="store_true")
    parser.add_argument("--fold-in", action="store_true")
    parser.add_argument("--recall-users", type=int, default=200)
    parser.add_argument(
        "--project-dir", default=None, help="serve the dataset of this Kedro project instead"
    )
    parser.add_argument(
        "--compare-index", action="store_true",
        help="serve the dataset's model twice, exact and ANN search: latency of both and the "
        "ANN lists' recall@20 against the exact ones",
    )
    parser.add_argument(
        "--words", action="store_true",
        help="also time requests with words (q=, the dataset's test requests) on the dataset",
    )
    opts = parser.parse_args()
    rows = []
    if not opts.skip_dataset:
        args = ["--dataset", opts.dataset] + (["--env", opts.env] if opts.env else [])
        if opts.project_dir:
            args += ["--project-dir", opts.project_dir]
        if opts.compare_index:  # the trained catalogue searched exactly and with its ANN index
            exact_rows, exact = scenario(
                opts.dataset, [*args, "--index", "exact"], opts, opts.recall_users
            )
            ann_rows, approx = scenario(
                opts.dataset, [*args, "--index", "ann"], opts, opts.recall_users
            )
            rows += exact_rows + ann_rows
            print_recall(approx, exact)
        else:
            rows += scenario(opts.dataset, args, opts)[0]
    if not opts.skip_synthetic:
        n = str(opts.synthetic_items)
        exact_rows, exact = scenario(
            f"synthetic {n}", ["--synthetic-items", n, "--index", "exact"], opts, opts.recall_users
        )
        ann_rows, approx = scenario(
            f"synthetic {n}", ["--synthetic-items", n, "--index", "ann"], opts, opts.recall_users
        )
        rows += exact_rows + ann_rows
        print_recall(approx, exact)
    if opts.fold_in:
        fold_in_report(opts)
    share = None
    if opts.words and not opts.skip_dataset and word_queries(opts.dataset):
        share = encoder_share(opts, word_queries(opts.dataset))
    print("\n| scenario | index | request | concurrency | requests | p50 ms | p99 ms | req/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['index']} | {r.get('request', 'top-20')} | "
            f"{r['concurrency']} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['req_per_s']} |"
        )
    if share:
        print(
            f"\nwords: encoding one request's words {share['encode_ms']} ms of "
            f"{share['answer_ms']} ms per answer in process ({100 * share['encoder_share']:.0f}%)"
        )


if __name__ == "__main__":
    main()
