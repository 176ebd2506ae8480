"""A scratch Kedro project for tests that run ``kedro run`` in a subprocess: the repository's
conf (without conf/local) and pyproject, an empty ``src/`` (Kedro checks it exists; crossrec is
the installed package) and a raw folder holding one dataset of interactions only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def ids_only_project(root: Path, users: int, items: int = 40, per_user: int = 10) -> Path:
    """``root`` as a project whose raw dataset ``ids`` is ``per_user`` distinct items per user
    (``user,item`` columns, seeded); returns ``root``."""
    folder = root / "raw" / "ids"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pairs = [(u, i) for u in range(users) for i in rng.choice(items, per_user, replace=False)]
    pd.DataFrame(pairs, columns=["user", "item"]).to_csv(folder / "interactions.csv", index=False)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    return root


def kedro_run(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``kedro run <args>`` in ``project``, offline, reading its raw folder."""
    env = {
        **os.environ,
        "CROSSREC_DATA_DIR": str(project / "raw"),
        "HF_HUB_OFFLINE": "1",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
