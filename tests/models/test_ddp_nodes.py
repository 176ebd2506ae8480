"""Two machines' worth of DDP on one: two processes, each started as its own "node" the way a
launcher starts one per machine (MASTER_ADDR / MASTER_PORT / NODE_RANK / WORLD_SIZE, gloo on
CPU, ``trainer.num_nodes: 2``, ``devices: 1``, ``strategy: ddp``), train the default model on
the tiny fixture for one epoch.

Each node has its own run_dir, as separate disks would: only global rank 0 writes checkpoints
and logs; the training data is split between the ranks (Lightning's DistributedSampler: each
rank runs half the steps); and the two ranks end with the same weights (DDP all-reduces the
gradients of every step)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrec.models.config import FinetuneConfig

HERE = Path(__file__).resolve().parent

NODE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {here!r})
    import lightning.pytorch as pl
    import torch
    from conftest import make_tiny_data
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    out = {out!r}

    class Record(pl.Callback):
        def on_train_start(self, trainer, module):
            loader = trainer.train_dataloader
            self.sampler = type(loader.sampler).__name__
            self.batches = int(trainer.num_training_batches)
            state = {{k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}}
            torch.save(state, f"{{out}}/initial-rank{{trainer.global_rank}}.pt")

        def on_train_end(self, trainer, module):
            rank = trainer.global_rank
            state = {{k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}}
            torch.save(state, f"{{out}}/final-rank{{rank}}.pt")
            with open(f"{{out}}/rank{{rank}}.json", "w") as f:
                json.dump({{"world_size": trainer.world_size, "sampler": self.sampler,
                           "batches": self.batches, "node_rank": trainer.node_rank,
                           "history": module.history}}, f)

    if __name__ == "__main__":
        config = FinetuneConfig.model_validate({config!r})
        run_dir = {run_dir!r} + "-node" + os.environ["NODE_RANK"]
        result = train_recommender(make_tiny_data(n_users=41), config, run_dir=run_dir,
                                   extra_callbacks=[Record()], enable_progress_bar=False)
        if os.environ["NODE_RANK"] == "0":
            torch.save(result.bundle, out + "/bundle.pt")
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(**trainer) -> FinetuneConfig:
    return FinetuneConfig.model_validate(
        {
            "model": {"content_mix": {"kind": "none"}},  # one model: its checkpoints per node
            "data": {"batch_size": 32},
            "optim": {"lr": 0.001},
            "trainer": {
                "max_epochs": 1,
                "seed": 0,
                "cpu_threads": 1,
                "accelerator": "cpu",
                "val_ks": [5, 10, 20],
                **trainer,
            },
        }
    )


def test_num_nodes_defaults_to_one_and_needs_ddp():
    assert FinetuneConfig().trainer.num_nodes == 1
    with pytest.raises(ValueError, match="num_nodes: 2 needs strategy: ddp"):
        _config(num_nodes=2)
    with pytest.raises(ValueError, match="num_nodes"):
        _config(num_nodes=0, strategy="ddp")


@pytest.mark.slow
def test_two_nodes_on_localhost(tmp_path):
    config = _config(num_nodes=2, devices=1, strategy="ddp")
    script = tmp_path / "node.py"
    script.write_text(
        NODE_SCRIPT.format(
            here=str(HERE),
            config=config.model_dump(mode="json"),
            run_dir=str(tmp_path / "run"),
            out=str(tmp_path),
        )
    )
    port = str(_free_port())
    procs = []
    for node in (0, 1):
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK")},
            "PYTHONPATH": os.pathsep.join(sys.path),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "NODE_RANK": str(node),
            "WORLD_SIZE": "2",
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=300))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise
    if any(proc.returncode for proc in procs):
        report = [
            f"node {node} exit {proc.returncode}:\n{err.decode()[-2500:]}"
            for node, (proc, (_, err)) in enumerate(zip(procs, outputs, strict=True))
        ]
        pytest.fail("\n".join(report))

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["node_rank"] for r in ranks] == [0, 1]
    assert {r["sampler"] for r in ranks} == {"DistributedSampler"}
    # 41 users x 7 train items = 287 pairs: 144 per rank in batches of 32 -> 5 steps each
    # (one process alone would run 9)
    assert [r["batches"] for r in ranks] == [5, 5]
    # validation: each rank ranks its share of the users, the sums are all-reduced
    metrics = [{k: v for k, v in r["history"][0].items() if k.startswith("val/")} for r in ranks]
    assert metrics[0] and metrics[0] == pytest.approx(metrics[1], abs=1e-9)

    node0, node1 = tmp_path / "run-node0", tmp_path / "run-node1"
    assert (node0 / "checkpoints" / "last.ckpt").exists()
    assert list((node0 / "checkpoints").glob("best-*.ckpt"))
    assert list((node0 / "logs" / "csv").rglob("metrics.csv"))
    written_by_node1 = [p for p in node1.rglob("*") if p.is_file()]
    assert written_by_node1 == []

    bundle = torch.load(tmp_path / "bundle.pt", weights_only=False)
    assert [row["epoch"] for row in bundle["history"]] == [0]
    assert 0.0 <= bundle["history"][0]["val/recall@20"] <= 1.0

    final = [torch.load(tmp_path / f"final-rank{r}.pt") for r in (0, 1)]
    initial = torch.load(tmp_path / "initial-rank0.pt")
    assert final[0].keys() == final[1].keys()
    for name, weight in final[0].items():
        np.testing.assert_allclose(weight.numpy(), final[1][name].numpy(), rtol=0, atol=1e-6)
    trained = [n for n, w in final[0].items() if w.is_floating_point()]
    assert any(not torch.allclose(final[0][n], initial[n]) for n in trained)
    # rank 0's last checkpoint holds those weights
    last = torch.load(node0 / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    for name in trained:
        np.testing.assert_allclose(final[0][name].numpy(), last[f"model.{name}"].numpy(), atol=1e-6)


def test_finetune_node_saves_on_rank_zero_only(tmp_path, monkeypatch):
    """Every rank runs ``kedro run``; the train_model node of a rank other than 0 ends its
    process (status 0) before Kedro would save trained_model a second time."""
    from lightning.pytorch.utilities import rank_zero_only

    from crossrec.pipelines.finetune.nodes import train_model

    sys.path.insert(0, str(HERE))
    from conftest import make_tiny_data

    data = make_tiny_data()
    params = _config().model_dump(mode="json")
    params["run_dir"] = str(tmp_path / "{dataset}")
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    bundle, history = train_model(data, params, seed=0, dataset="tiny")
    assert bundle["history"] and len(history) == 1
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    with pytest.raises(SystemExit) as stop:
        train_model(data, params, seed=0, dataset="tiny")
    assert stop.value.code == 0
