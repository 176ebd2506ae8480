"""Cost by stage as the data grows: wall time and peak RSS of each pipeline stage on synthetic
datasets of 10^5, 10^6 and 10^7 interactions (benchmarks/_scale_data.py: Zipf-like item
popularity and user activity, clustered image / text vectors read by the generic adapter).

Each stage is its own process (``kedro run --pipelines <stage>``; serve: ``crossrec serve``
until ``/api/health`` answers), run in a scratch project folder (``<data-dir>/project``: this
project's conf/base, a conf/local that declares the datasets, its own data/), so nothing is
written into the repository. Peak memory is the largest sum over the process tree of the
proportional set size (RSS with shared pages counted once: a forked helper does not double
it), polled every 0.2 s. A stage past ``--timeout`` is killed and reported as "stopped after
N s"; the stages after it are not run.

    python benchmarks/scale.py --sizes 1e5,1e6 --out scale.json
    python benchmarks/scale.py --sizes 1e7 --timeout 900 --real

The table gives seconds and peak GB per stage and size, then the growth exponent of each stage
between consecutive sizes, log(t2 / t1) / log(n2 / n1) on the interactions ingested; the last
line is ``max exponent: <x> (<stage>)`` of the last pair of sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import yaml
from _scale_data import dataset_options, generate, spec_for

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "featurize_modalities", "fuse", "finetune", "evaluate", "recommend", "serve")
REAL = ("movielens100k_multimodal", "lastfm2k_multimodal")

#: run settings of every stage (conf/local of the scratch project): one training epoch of the
#: content model alone (the default mix trains its ID-only twin too and ranks validation users
#: once per grid point: docs/scale.md), and evaluate with the trained model at one seed, the
#: MostPop baseline, no ablation, no words
SCALE_PARAMS = {
    "finetune": {
        "trainer": {"max_epochs": 1, "patience": 1},
        "model": {"content_mix": {"kind": "none"}},
    },
    "evaluate": {
        "seeds": [2026],
        "ablation": False,
        "trained_ablation": "none",
        "words": {"enabled": False},
        "baselines": {
            name: {"enabled": False}
            for name in ("ItemKNN", "EASE", "MF-BPR", "LightGCN", "ContentOnly", "VBPR")
        },
    },
}


def size_name(n: int, noise_rank: int | None = None) -> str:
    exponent = int(round(math.log10(n)))
    name = f"scale_1e{exponent}" if 10**exponent == n else f"scale_{n}"
    return f"{name}_r{noise_rank}" if noise_rank else name


def parse_sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def dotted(assignments: list[str]) -> dict:
    """``a.b.c=value`` (value read as YAML) -> nested dict."""
    out: dict = {}
    for item in assignments:
        key, _, value = item.partition("=")
        node = out
        *parents, last = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return out


def make_project(
    data_dir: Path, datasets: dict[str, dict], links: dict[str, Path], extra: dict
) -> Path:
    """A scratch project: a copy of this project's pyproject.toml, a link to its conf/base,
    its own conf/local (datasets and run settings) and data/; the package is the installed
    one (an empty src/ satisfies Kedro's start-up check)."""
    project = data_dir / "project"
    (project / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (project / "src").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "pyproject.toml", project / "pyproject.toml")
    if not (project / "conf" / "base").is_symlink():
        (project / "conf" / "base").symlink_to(ROOT / "conf" / "base")
    raw = data_dir / "raw"
    raw.mkdir(exist_ok=True)
    for name, target in links.items():
        link = raw / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
    params = merge(SCALE_PARAMS, {"ingest": {"raw_root": str(raw), "datasets": datasets}})
    params = merge(params, extra)
    (project / "conf" / "local" / "parameters_scale.yml").write_text(yaml.safe_dump(params))
    return project


def process_memory(p: psutil.Process) -> int:
    """Proportional set size (shared pages split among their users, so a forked helper is not
    counted twice) where Linux gives it, else the RSS."""
    try:
        with open(f"/proc/{p.pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return p.memory_info().rss


def tree_rss(proc: psutil.Process) -> int:
    """Memory of the stage: the process and all its descendants."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += process_memory(p)
        except psutil.NoSuchProcess:
            pass
    return total


def stop(popen: subprocess.Popen) -> None:
    """End the stage's own process group (it was started in a new session)."""
    if popen.poll() is None:
        os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()


def run_measured(cmd: list[str], cwd: Path, timeout: float, log: Path, ready=None) -> dict:
    """Run ``cmd`` polling its tree's RSS; ``ready()`` True ends it (serve start-up)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        popen = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        proc, peak, status = psutil.Process(popen.pid), 0, None
        while status is None:
            peak = max(peak, tree_rss(proc))
            elapsed = time.perf_counter() - start
            if ready is not None and ready():
                status = "ok"
            elif popen.poll() is not None:
                status = (
                    "ok"
                    if popen.returncode == 0 and ready is None
                    else (f"failed (exit {popen.returncode})")
                )
            elif elapsed > timeout:
                status = f"stopped after {int(elapsed)} s"
            else:  # reading a large process's PSS costs CPU: poll less as a stage runs on
                time.sleep(min(2.0, 0.2 + elapsed / 100))
        wall = time.perf_counter() - start
        stop(popen)
    result = {
        "status": status,
        "wall_s": round(wall, 2),
        "peak_rss_gb": round(peak / 2**30, 3),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
    }
    if status.startswith("failed"):
        result["log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int):
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    return ready


def stage_command(stage: str, dataset: str, project: Path) -> tuple[list[str], object]:
    bin_dir = Path(sys.executable).parent
    if stage == "serve":
        port = free_port()
        cmd = [
            str(bin_dir / "crossrec"),
            "serve",
            "--dataset",
            dataset,
            "--project-dir",
            str(project),
            "--port",
            str(port),
        ]
        return cmd, health(port)
    cmd = [str(bin_dir / "kedro"), "run", "--pipelines", stage, "--params", f"dataset={dataset}"]
    return cmd, None


def run_dataset(dataset: str, project: Path, stages: list[str], timeout: float, logs: Path) -> dict:
    results: dict[str, dict] = {}
    for stage in stages:
        blocked = next((s for s, r in results.items() if r["status"] != "ok"), None)
        if blocked:
            results[stage] = {"status": f"not run ({blocked} did not finish)"}
            continue
        cmd, ready = stage_command(stage, dataset, project)
        prefix = ["nice", "-n", "5"]
        results[stage] = run_measured(
            prefix + cmd, project, timeout, logs / f"{dataset}.{stage}.log", ready
        )
        print(
            f"  {dataset} {stage}: {results[stage]['status']} "
            f"{results[stage]['wall_s']:.1f} s, {results[stage]['peak_rss_gb']:.2f} GB",
            flush=True,
        )
    return results


def dataset_size(project: Path, dataset: str) -> int | None:
    path = project / "data" / "02_intermediate" / dataset / "dataset_info.json"
    if path.is_file():
        return int(json.loads(path.read_text())["n_interactions"])
    return None


def cell(result: dict | None) -> str:
    if not result or "wall_s" not in result:
        return "-"
    text = f"{result['wall_s']:.1f} s / {result['peak_rss_gb']:.2f} GB"
    if result["status"].startswith("stopped"):
        return f">{result['wall_s']:.0f} s (stopped) / {result['peak_rss_gb']:.2f} GB"
    if result["status"] != "ok":
        return f"failed after {result['wall_s']:.0f} s"
    return text


def exponent(r1: dict | None, r2: dict | None, n1: float, n2: float) -> tuple[float, bool] | None:
    """Growth exponent of wall time; (value, is_lower_bound) - a stopped stage gives a bound."""
    if not r1 or not r2 or r1.get("status") != "ok" or "wall_s" not in r2:
        return None
    if not (r2["status"] == "ok" or r2["status"].startswith("stopped")):
        return None
    value = math.log(r2["wall_s"] / max(r1["wall_s"], 1e-9)) / math.log(n2 / n1)
    return value, r2["status"] != "ok"


def merged_runs(runs: list[dict], earlier: list[dict]) -> list[dict]:
    """The earlier runs' datasets and stages with this run's (a stage run again here replaces
    the earlier result), synthetic sizes first, by size: a stage measured at 10^7 now and at
    10^6 before gets its exponent, and a size's later stages can be run on their own."""
    merged: dict[str, dict] = {}
    for run in [*earlier, *runs]:
        if run["dataset"] in merged:
            before = merged[run["dataset"]]
            run = {**run, "stages": {**before["stages"], **run["stages"]}}
            run["n_interactions"] = run.get("n_interactions") or before.get("n_interactions")
        merged[run["dataset"]] = run
    return sorted(merged.values(), key=lambda r: (not r["synthetic"], r["nominal_interactions"]))


def format_report(runs: list[dict], stages: list[str]) -> str:
    """The stage x size table, the exponents between consecutive synthetic sizes and the
    ``max exponent`` line of the last pair."""
    names = [r["dataset"] for r in runs]
    rows = [["stage", *[f"{r['dataset']} ({r['n_interactions']:,})" for r in runs]]]
    rows += [[s, *[cell(r["stages"].get(s)) for r in runs]] for s in stages]
    widths = [max(len(row[i]) for row in rows) for i in range(len(names) + 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    synth = [r for r in runs if r.get("synthetic")]
    last: dict[str, tuple[float, bool]] = {}
    for a, b in zip(synth, synth[1:], strict=False):
        lines.append(
            f"\ngrowth exponent {a['dataset']} -> {b['dataset']} "
            f"(interactions x{b['n_interactions'] / a['n_interactions']:.1f}):"
        )
        last = {}
        for s in stages:
            e = exponent(
                a["stages"].get(s), b["stages"].get(s), a["n_interactions"], b["n_interactions"]
            )
            if e is not None:
                last[s] = e
            text = "-" if e is None else (">=" if e[1] else "") + f"{e[0]:.2f}"
            lines.append(f"  {s:22s} {text}")
    if last:
        stage, (value, bound) = max(last.items(), key=lambda kv: kv[1][0])
        lines.append(f"max exponent: {'>=' if bound else ''}{value:.2f} ({stage})")
    else:
        lines.append("max exponent: - (no stage finished at two sizes)")
    return "\n".join(lines)


def markdown_table(runs: list[dict], stages: list[str]) -> str:
    """The stage x size table in Markdown (docs/scale.md)."""
    head = [f"{r['dataset']} ({r['n_interactions']:,})" for r in runs]
    lines = ["| stage | " + " | ".join(head) + " |", "|---" * (len(runs) + 1) + "|"]
    for s in stages:
        lines.append(f"| {s} | " + " | ".join(cell(r["stages"].get(s)) for r in runs) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="interactions, e.g. 1e5,1e6")
    parser.add_argument(
        "--real", action="store_true", help=f"also the shared datasets {', '.join(REAL)}"
    )
    parser.add_argument(
        "--real-root",
        type=Path,
        default=Path(os.environ.get("CROSSREC_DATA_DIR", ROOT / "../shared/data")),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("/work/scale-data"),
        help="scratch folder (datasets, project, outputs); outside the repo",
    )
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--timeout", type=float, default=900, help="seconds per stage")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra parameter of every run, e.g. evaluate.chunk_users=512",
    )
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument(
        "--noise-rank",
        type=int,
        default=None,
        help="modality noise inside a random subspace of this rank per cluster (the local "
        "intrinsic dimension of learned embeddings) instead of isotropic noise; datasets "
        "scale_<size>_r<rank>",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the scratch project's data/ of these datasets first",
    )
    parser.add_argument("--out", type=Path, default=None, help="results as JSON")
    parser.add_argument(
        "--previous",
        type=Path,
        nargs="*",
        default=[],
        help="--out files of earlier runs: their sizes and stages join the table and the "
        "exponents (a stage run again here replaces theirs)",
    )
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {STAGES}")
    data_dir = args.data_dir.resolve()
    if ROOT in data_dir.parents or data_dir == ROOT:
        parser.error("--data-dir must be outside the repository")

    datasets, links, plan = {}, {}, []
    for n in parse_sizes(args.sizes):
        spec, name = spec_for(n, noise_rank=args.noise_rank), size_name(n, args.noise_rank)
        folder = data_dir / "datasets" / name
        if args.regenerate or not (folder / "spec.json").is_file():
            t = time.perf_counter()
            generate(spec, folder)
            print(f"generated {name} in {time.perf_counter() - t:.0f} s", flush=True)
        datasets[name], links[name] = dataset_options(spec), folder
        plan.append((name, n, True))
    if args.real:
        for name in REAL:
            links[name] = (args.real_root / name).resolve()
            plan.append((name, 0, False))
    project = make_project(data_dir, datasets, links, dotted(args.set))
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)

    machine = {
        "command": " ".join(["python", "benchmarks/scale.py", *(argv or sys.argv[1:])]),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
    }
    runs = []
    for name, n, synthetic in plan:
        if args.fresh:
            for layer in (project / "data").glob(f"*/{name}"):
                shutil.rmtree(layer)
        print(f"{name}:", flush=True)
        results = run_dataset(name, project, stages, args.timeout, logs)
        runs.append(
            {
                "dataset": name,
                "synthetic": synthetic,
                "nominal_interactions": n,
                "n_interactions": dataset_size(project, name) or n,
                "stages": results,
            }
        )
        if args.out:
            args.out.write_text(json.dumps({**machine, "runs": runs}, indent=2))
    runs = merged_runs(runs, [r for p in args.previous for r in json.loads(p.read_text())["runs"]])
    report = format_report(runs, stages)
    print(report)
    if args.out:
        markdown = markdown_table(runs, stages)
        args.out.write_text(
            json.dumps({**machine, "runs": runs, "report": report, "markdown": markdown}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
