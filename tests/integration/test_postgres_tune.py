"""Two tune workers share one study on a real PostgreSQL server started here on loopback.

Needs Debian's server binaries (``apt-get install -y postgresql``: /usr/lib/postgresql/*/bin)
and the psycopg2 driver (``pip install -e '.[postgres]'``); skipped with the reason otherwise,
or failed when ``CROSSREC_REQUIRE_INTEGRATION=1`` (``make test-integration`` in CI).
The test runs initdb into a temporary folder, starts the server with pg_ctl on 127.0.0.1 and a
free port, and stops it at the end. initdb refuses to run as root: as root the server commands
run as the ``postgres`` system user (runuser) on a folder it owns.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WORKER = Path(__file__).resolve().parents[1] / "tuning" / "tune_worker.py"


def unavailable(reason: str) -> None:
    """Skip, or fail where CI demands the integration tests (CROSSREC_REQUIRE_INTEGRATION=1)."""
    if os.environ.get("CROSSREC_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"integration test required but {reason}", pytrace=False)
    pytest.skip(reason)


def server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        unavailable("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): "
                    "apt-get install -y postgresql")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(args: list[str]) -> list[str]:
    """As root, run ``args`` as the ``postgres`` system user (initdb refuses root)."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if runuser is None:
        unavailable("running as root without runuser: cannot start PostgreSQL")
    return [runuser, "-u", "postgres", "--", *args]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(as_server_user(args), capture_output=True, text=True, timeout=120,
                            **kwargs)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if importlib.util.find_spec("psycopg2") is None:
        unavailable("psycopg2 missing: pip install -e '.[postgres]'")
    bindir = server_bin()
    root = Path(tempfile.mkdtemp(prefix="crossrec-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and no 'postgres' system user for initdb")
        shutil.chown(root, user="postgres")
    data, port = root / "data", free_port()
    run([str(bindir / "initdb"), "-D", str(data), "-U", "crossrec", "--auth=trust",
         "-E", "UTF8", "--no-instructions"])
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"),
         "-w", "-t", "60", "start"])
    try:
        run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "crossrec",
             "optuna"])
        yield f"postgresql+psycopg2://crossrec@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                       "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def load_worker():
    spec = importlib.util.spec_from_file_location("tune_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_workers_share_one_postgres_study(postgres_url: str):
    worker = load_worker()
    start = time.perf_counter()
    reports = worker.launch(postgres_url, "crossrec-pg", 16, seeds=[0, 0])
    stats = worker.check_shared_study(postgres_url, "crossrec-pg", 16, reports)
    print(f"2 PostgreSQL workers: {stats} in {time.perf_counter() - start:.1f} s")
    # A third worker on the finished study adds nothing.
    assert worker.launch(postgres_url, "crossrec-pg", 16, seeds=[1])[0]["trials"] == []
