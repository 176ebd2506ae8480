"""A real trained model to serve: the default chain run by `kedro run` on the synthetic dataset
in a scratch project (as tests/test_end_to_end.py does; gated fusion so the explanation has
modality weights), and a `crossrec serve` subprocess over it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATASET = "synthetic_multimodal"
MAX_UPLOAD_BYTES = 300_000
MAX_IMAGE_PIXELS = 1_000_000

OVERRIDES = {
    "featurize_modalities": {
        "text": {"model": "minilm-l6", "batch_size": 16},
        "image": {"num_workers": 0},
        "audio": {"num_workers": 0},
    },
    "finetune": {
        "model": {"embedding_dim": 16, "fusion": {"strategy": "gated"}},
        "trainer": {"max_epochs": 3, "patience": 3, "cpu_threads": 1},
    },
    "evaluate": {
        "seeds": [2026],
        "ablation": False,
        "baseline_defaults": {"trainer": {"max_epochs": 2, "patience": 2}},
        "words": {"finetune": {"max_pairs": 64, "batch_size": 16}},
    },
    "recommend": {
        "upload": {"max_bytes": MAX_UPLOAD_BYTES, "max_image_pixels": MAX_IMAGE_PIXELS},
        "fold_in": {"steps": 10},
    },
}


def project_env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        ),
        "CROSSREC_DATA_DIR": str(project / "raw"),
        "CROSSREC_MODEL_CACHE": str(PROJECT_ROOT / "data" / "06_models" / "zoo"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "serve", "--params", f"dataset={DATASET}"]
    return subprocess.run(
        [*cmd, *args],
        cwd=project,
        env=project_env(project),
        capture_output=True,
        text=True,
        timeout=1200,
    )


#: a folder to build the scratch project in once and reuse across test runs (local iteration)
REUSE_VARIABLE = "CROSSREC_TEST_SERVE_PROJECT"


@pytest.fixture(scope="session")
def serve_project(tmp_path_factory) -> Path:
    """A scratch Kedro project with a trained, evaluated model of the synthetic dataset."""
    reuse = os.environ.get(REUSE_VARIABLE)
    if reuse and (Path(reuse) / "data" / "06_models" / DATASET / "trained_model.pkl").exists():
        return Path(reuse)
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("serve_project")
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir(exist_ok=True)
    shutil.copytree(
        PROJECT_ROOT / "conf",
        root / "conf",
        ignore=shutil.ignore_patterns("local"),
        dirs_exist_ok=True,
    )
    (root / "conf" / "local").mkdir(exist_ok=True)
    raw_root = root / "raw"
    make_synthetic_dataset(raw_root / DATASET, seed=0)
    ingest = synthetic_ingest_params(raw_root / DATASET)
    ingest.pop("raw_root")
    env = root / "conf" / "serve"
    env.mkdir(exist_ok=True)
    (env / "parameters_serve.yml").write_text(yaml.safe_dump({"ingest": ingest, **OVERRIDES}))
    result = kedro_run(root)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client(requests.Session):
    """requests with a base URL and a generous timeout (the first explanation builds parts)."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 120)
        return super().request(method, self.base + url, *args, **kwargs)


class Server:
    """`crossrec serve` in a subprocess; ``client`` talks HTTP to it."""

    def __init__(self, project: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "crossrec",
            "serve",
            "--project-dir",
            str(project),
            "--dataset",
            DATASET,
            "--env",
            "serve",
            "--port",
            str(self.port),
            *args,
        ]
        self.log = project / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            cmd,
            cwd=project,
            env={**project_env(project), **(env or {})},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.client = Client(self.url)

    def wait(self, timeout: float = 180) -> Server:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.output()}")
            try:
                if self.client.get("/api/health").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"server did not start: {self.output()}")

    def output(self) -> str:
        return self.log.read_text()[-4000:]

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def server(serve_project):
    srv = Server(serve_project).wait()
    yield srv
    srv.stop()


API_KEY = "s3cret-key"


@pytest.fixture(scope="session")
def keyed_server(serve_project):
    """A server behind an API key (CROSSREC_API_KEY)."""
    srv = Server(serve_project, env={"CROSSREC_API_KEY": API_KEY}).wait()  # health is public
    yield srv
    srv.stop()
