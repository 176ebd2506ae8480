"""docs/results.md and README's results table, written from run outputs, never typed by hand.

Reads, per dataset, what evaluate wrote under ``data/08_reporting/<dataset>/`` (metrics.json,
significance.json, evaluation_timings.json, data_summary.json) and the run record the Kedro
hook left in ``runs/``, and writes one document. Nothing in it depends on the clock or the
machine that renders it, so the same outputs always give the same file.

    python -m crossrec.evaluation.results_doc            # or: make results
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossrec.evaluation.report import NODES_KEY
from crossrec.evaluation.report_tables import fmt, markdown_table
from crossrec.evaluation.report_words import (
    COLD_USERS_KEY,
    WORDS_KEY,
    cold_users_section,
    words_section,
)

RUNS_FOLDER = "runs"
MODEL_NAME = "crossrec"
#: (slice, metric) columns of the results table, shown when a run measured them
COLUMNS = (
    ("test", "recall", "test R"),
    ("test", "ndcg", "test N"),
    ("test_warm", "recall", "warm items R"),
    ("test_warm", "ndcg", "warm items N"),
    ("test_cold", "recall", "cold items R"),
    ("test_cold", "ndcg", "cold items N"),
    ("test", "coverage", "coverage"),
)
README_START = "<!-- results:{dataset} (written by make results) -->"
README_END = "<!-- /results:{dataset} -->"


def read_json(path: Path) -> Any:
    """A JSON output, or None when the run did not write it."""
    return json.loads(path.read_text()) if path.is_file() else None


def latest_run(folder: Path) -> dict[str, Any] | None:
    """The newest successful run record of a run that evaluated (evaluate alone or the chain)."""
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        ran = record.get("pipelines") or []
        if record.get("ok") and ("evaluate" in ran or "__default__" in ran):
            return record
    return None


def machine_line(facts: dict[str, Any]) -> str:
    """``2 cores, 23.5 GiB, no GPU``: what a reader needs to weigh a timing."""
    memory = facts.get("memory_gib")
    parts = [f"{facts.get('cores')} cores", f"{memory} GiB" if memory else None]
    return ", ".join([p for p in parts if p] + [facts.get("gpu") or "no GPU"])


def run_line(folder: Path) -> str:
    """Which run wrote the outputs: command, date, machine, commit, wall time."""
    record = latest_run(folder / RUNS_FOLDER)
    if record is None:
        written = datetime.fromtimestamp((folder / "metrics.json").stat().st_mtime, UTC)
        return (
            f"Run: not recorded (metrics.json written {written:%Y-%m-%d %H:%M} UTC by a run that "
            "kept no run record)."
        )
    commit = (record.get("commit") or "unknown")[:10]
    changed = " with local changes" if record.get("changed") else ""
    minutes = record.get("wall_s", 0) / 60
    return (
        f"Run: `{record['command']}`, {record['started'][:10]}, "
        f"{machine_line(record.get('machine', {}))}, commit {commit}{changed}, "
        f"{minutes:.0f} min."
    )


def data_line(summary: dict[str, Any] | None) -> str:
    """Size and split of the dataset, from ingest's data_summary.json."""
    if not summary:
        return ""
    splits = summary.get("splits", {})
    test = splits.get("test", {})
    cold = f", {summary['cold_items']} cold items" if summary.get("cold_items") else ""
    return (
        f"{summary['users']:,} users × {summary['items']:,} items, "
        f"{summary['interactions']:,} interactions; split `{summary.get('split_strategy')}`"
        f"{cold}; {test.get('users', '?')} test users."
    )


def model_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The per-model entries of metrics.json (without the words / cold-users blocks)."""
    return {m: v for m, v in metrics.items() if m not in (WORDS_KEY, COLD_USERS_KEY)}


def present_columns(metrics: dict[str, Any], k: int) -> list[tuple[str, str, str]]:
    """The table's columns the run measured, as (slice, metric@k, header)."""
    out = []
    for slice_name, metric, header in COLUMNS:
        key = f"{metric}@{k}"
        if any(key in per.get(slice_name, {}) for per in metrics.values()):
            out.append((slice_name, key, f"{header}@{k}"))
    return out


def results_table(metrics: dict[str, Any], k: int, with_ablations: bool = True) -> str:
    """Models as rows, test / warm / cold recall and NDCG and coverage as columns."""
    models = model_metrics(metrics)
    columns = present_columns(models, k)
    rows = []
    for model, per_slice in models.items():
        if not with_ablations and model.startswith(f"{MODEL_NAME} "):
            continue
        label = f"**{model}**" if model == MODEL_NAME else model
        rows.append([label, *(fmt(per_slice.get(s, {}).get(key)) for s, key, _ in columns)])
    return markdown_table(["model", *(header for *_, header in columns)], rows)


def significance_lines(significance: dict[str, Any] | None, k: int) -> list[str]:
    """crossrec against the strongest baseline of each slice: difference and Wilcoxon p."""
    if not significance:
        return []
    rows = []
    by_slice: dict[str, list[dict]] = {}
    for test in significance.get("tests", []):
        if test.get("model_a") == MODEL_NAME and test.get("metric") == f"recall@{k}":
            by_slice.setdefault(test["slice"], []).append(test)
    for slice_name, tests in by_slice.items():
        best = max(tests, key=lambda t: t["mean_b"])
        ndcg = next(
            (
                t
                for t in significance["tests"]
                if t["slice"] == slice_name
                and t["model_b"] == best["model_b"]
                and t["metric"] == f"ndcg@{k}"
            ),
            None,
        )
        cells = [f"{best['mean_diff']:+.4f} (p = {best['wilcoxon_p']:.2g})"]
        cells.append(f"{ndcg['mean_diff']:+.4f} (p = {ndcg['wilcoxon_p']:.2g})" if ndcg else "–")
        rows.append([slice_name, best["model_b"], str(best["n_users"]), *cells])
    if not rows:
        return []
    header = ["slice", "strongest baseline", "users", f"crossrec − it, recall@{k}", f"ndcg@{k}"]
    return [
        "Paired over users (values averaged over seeds), two-sided Wilcoxon:",
        "",
        markdown_table(header, rows),
        "",
    ]


def selection_lines(timings: dict[str, Any] | None) -> list[str]:
    """Each baseline's settings chosen on validation, so a reader can judge the tuning budget."""
    if not timings:
        return []
    rows = []
    for model, entry in timings.items():
        selection = entry.get("selection") if isinstance(entry, dict) else None
        if not selection:
            continue
        chosen = ", ".join(f"{k} {v}" for k, v in selection.get("chosen", {}).items())
        rows.append([model, str(selection.get("grid_size", "?")), chosen or "–"])
    kept = [
        model
        for model, entry in timings.items()
        if model != NODES_KEY
        and not model.startswith(MODEL_NAME)
        and isinstance(entry, dict)
        and entry.get("train_s", 0) > 0
        and not entry.get("selection")
    ]
    edges = [
        entry["selection"]["grid_edge"]
        for entry in timings.values()
        if isinstance(entry, dict) and (entry.get("selection") or {}).get("grid_edge")
    ]
    lines = []
    if rows:
        lines += [
            "Settings chosen on validation (recall@20 of the first seed), per baseline:",
            "",
            markdown_table(["model", "grid points", "chosen"], rows),
            "",
            *(f"- {edge}" for edge in edges),
            "",
        ]
    if kept:
        lines += [
            f"{', '.join(kept)}: the values of `conf/base/parameters_evaluate.yml`, no grid "
            "searched in this run (`evaluate.selection.scope: all` searches every grid).",
            "",
        ]
    return lines


def time_lines(timings: dict[str, Any] | None) -> list[str]:
    """Training time per model, summed over seeds, and evaluate's wall time."""
    if not timings:
        return []
    trained = [
        f"{model} {entry['train_s']:.0f} s"
        for model, entry in timings.items()
        if model != NODES_KEY and isinstance(entry, dict) and entry.get("train_s", 0) > 0
    ]
    nodes = timings.get(NODES_KEY, {})
    wall = sum(entry.get("wall_s", 0.0) for entry in nodes.values())
    if not trained:
        return []
    return [
        f"Training time summed over seeds: {', '.join(trained)}; evaluate's training nodes "
        f"{wall:.0f} s of wall time.",
        "",
    ]


def demote(lines: Sequence[str], levels: int = 1) -> list[str]:
    """Markdown headings one level deeper, so report sections nest under a dataset."""
    return [("#" * levels + line) if line.startswith("#") else line for line in lines]


def dataset_section(folder: Path, k: int = 20) -> list[str]:
    """One dataset's section: what ran, the table, the tests, words and users without history."""
    metrics = read_json(folder / "metrics.json")
    timings = read_json(folder / "evaluation_timings.json")
    return [
        f"## {folder.name}",
        "",
        run_line(folder),
        "",
        data_line(read_json(folder / "data_summary.json")),
        "",
        "Full ranking over all items, the user's known items masked; mean ± std over seeds. "
        f"`{MODEL_NAME} w/o <modality>`: the trained model with that modality masked at "
        "inference.",
        "",
        results_table(metrics, k),
        "",
        *significance_lines(read_json(folder / "significance.json"), k),
        *selection_lines(timings),
        *time_lines(timings),
        *demote(words_section(metrics.get(WORDS_KEY))),
        *demote(cold_users_section(metrics.get(COLD_USERS_KEY))),
    ]


def evaluated_datasets(reporting: Path) -> list[str]:
    """Every dataset folder holding a metrics.json, in name order."""
    return sorted(p.parent.name for p in reporting.glob("*/metrics.json"))


def render(reporting: Path, datasets: Sequence[str], k: int = 20) -> str:
    """The whole of docs/results.md."""
    parts = [
        "# Results",
        "",
        "Written by `make results` (`python -m crossrec.evaluation.results_doc`) from the "
        "outputs of the runs named below; do not edit by hand. Per-user values and plots are "
        "in each run's `data/08_reporting/<dataset>/report.md`. Findings, with the commands "
        "that measure them, are in [findings.md](findings.md).",
        "",
    ]
    for name in datasets:
        parts += dataset_section(reporting / name, k)
    return "\n".join(_squeeze(parts)).rstrip() + "\n"


def _squeeze(lines: Sequence[str]) -> list[str]:
    """No two blank lines in a row (sections that had nothing to say leave none)."""
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return out


def readme_block(reporting: Path, dataset: str, k: int = 20) -> str:
    """README's short table: the run line and the models, without the ablation rows."""
    folder = reporting / dataset
    return "\n".join(
        [run_line(folder), "", results_table(read_json(folder / "metrics.json"), k, False)]
    )


def replace_block(text: str, dataset: str, block: str) -> str:
    """README with the text between the dataset's results markers replaced by ``block``."""
    start, end = README_START.format(dataset=dataset), README_END.format(dataset=dataset)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        return text
    return pattern.sub(lambda _: f"{start}\n{block}\n{end}", text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reporting", type=Path, default=Path("data/08_reporting"))
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--datasets", nargs="*", help="default: every evaluated dataset")
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args(argv)
    datasets = args.datasets or evaluated_datasets(args.reporting)
    missing = [d for d in datasets if not (args.reporting / d / "metrics.json").is_file()]
    if not datasets or missing:
        raise SystemExit(
            f"no metrics.json for {', '.join(missing) or 'any dataset'} under {args.reporting}: "
            "run `make demo` (or `kedro run --params dataset=<name>`) first"
        )
    args.out.write_text(render(args.reporting, datasets, args.k))
    if args.readme.is_file():
        text = args.readme.read_text()
        for name in datasets:
            text = replace_block(text, name, readme_block(args.reporting, name, args.k))
        args.readme.write_text(text)
    print(f"wrote {args.out} ({', '.join(datasets)})")


if __name__ == "__main__":
    main()
