"""A record of every ``kedro run``: what ran, on which machine, from which commit, how long.

Written to ``data/08_reporting/<dataset>/runs/<UTC time>.json`` when a run ends (``ok`` false
when it failed), so a results table (:mod:`crossrec.evaluation.results_doc`) can say which run
made it and a reader can tell a laptop figure from a GPU one. Nothing here imports torch: the
GPU is named only when the run already loaded it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

RUNS_FOLDER = "runs"


def usable_cores() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    """Total memory in GiB from /proc/meminfo; None where there is no such file."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        return None
    return None


def gpu_name() -> str | None:
    """The GPU the run used, if torch was loaded and saw one (never imports torch itself)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # noqa: BLE001 - a broken driver must not fail the run record
        return None
    return None


def machine() -> dict[str, Any]:
    """Facts a reader needs to compare timings: cores, memory, GPU, OS, Python."""
    return {
        "cores": usable_cores(),
        "memory_gib": memory_gib(),
        "gpu": gpu_name(),
        "cpu": platform.processor() or platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def git_commit(root: Path) -> dict[str, Any]:
    """The checkout's commit and whether tracked files had changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "changed": bool(status) if status is not None else None}


#: Kedro run parameters that narrow a run, and the ``kedro run`` option that sets each
NODE_FILTERS = {
    "tags": "--tags",
    "node_names": "--nodes",
    "from_nodes": "--from-nodes",
    "to_nodes": "--to-nodes",
    "namespaces": "--namespaces",
}


def command_line(run_params: dict[str, Any]) -> str:
    """The ``kedro run`` that reproduces the run, from Kedro's run parameters."""
    parts = ["kedro run"]
    pipelines = run_params.get("pipeline_names") or []
    if pipelines and list(pipelines) != ["__default__"]:
        parts.append("--pipelines " + ",".join(pipelines))
    if run_params.get("env") and run_params["env"] != "local":
        parts.append(f"--env {run_params['env']}")
    for key, option in NODE_FILTERS.items():
        if run_params.get(key):
            parts.append(f"{option} " + ",".join(run_params[key]))
    extra = dotted_params(run_params.get("runtime_params") or {})
    if extra:
        parts.append("--params " + ",".join(f"{k}={v}" for k, v in sorted(extra.items())))
    return " ".join(parts)


def dotted_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Runtime parameters as ``--params`` takes them: nested keys dotted, booleans and None
    as YAML writes them (Kedro nests ``a.b=1`` into ``{"a": {"b": 1}}``)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(dotted_params(value, f"{dotted}."))
        elif isinstance(value, bool) or value is None:
            out[dotted] = {True: "true", False: "false", None: "null"}[value]
        else:
            out[dotted] = str(value)
    return out


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    """Writes one run's record; the name sorts by start time."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = record["started"].replace(":", "").replace("-", "")
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return path


class RunRecords:
    """Kedro hooks writing one run record per ``kedro run`` into the dataset's reporting folder."""

    def __init__(self) -> None:
        self._started: tuple[float, str] | None = None
        self._run_params: dict[str, Any] = {}
        self._dataset: str | None = None
        self._nodes_started = 0

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._started = (time.monotonic(), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._run_params = dict(run_params)
        self._nodes_started = 0
        try:
            self._dataset = str(catalog.load("params:dataset"))
        except Exception:  # noqa: BLE001 - a project without `dataset` simply keeps no record
            self._dataset = None

    @hook_impl
    def before_node_run(self) -> None:
        self._nodes_started += 1

    def _finish(self, ok: bool) -> None:
        """Writes the record; a run refused before its first node (bad parameters) writes none:
        such a run leaves ``data/`` as it found it."""
        if self._started is None or not self._dataset or (not ok and not self._nodes_started):
            self._started = None
            return
        start, started = self._started
        root = Path(self._run_params.get("project_path") or Path.cwd())
        pipelines = list(self._run_params.get("pipeline_names") or ["__default__"])
        record = {
            "started": started,
            "wall_s": round(time.monotonic() - start, 1),
            "ok": ok,
            "dataset": self._dataset,
            "pipelines": pipelines,
            "command": command_line(self._run_params),
            "machine": machine(),
            **git_commit(root),
        }
        folder = root / "data" / "08_reporting" / self._dataset / RUNS_FOLDER
        try:
            write_record(folder, record)
        except OSError as error:
            logger.warning("could not write the run record in %s: %s", folder, error)
        self._started = None

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._finish(ok=True)

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._finish(ok=False)
