"""An unknown dataset name is called unknown, with the closest declared name, wherever it is
given: `kedro run --params dataset=...` (ingest) and `crossrec serve --dataset ...`."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossrec.data.config import parse_ingest_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_unknown_dataset_suggests_the_closest_name():
    config = parse_ingest_params(
        {"datasets": {"movielens100k_multimodal": {"adapter": "generic"}}}
    )
    with pytest.raises(KeyError) as err:
        config.resolve("movielens100k_multimodl")
    message = str(err.value)
    assert "Did you mean 'movielens100k_multimodal'?" in message
    assert "conf/base, conf/local or the run's --env" in message
    assert "conf/base/parameters_ingest.yml declares" not in message


def test_serve_unknown_dataset_says_unknown_not_run_finetune(capsys, monkeypatch):
    from crossrec.api.cli import main

    monkeypatch.delenv("CROSSREC_API_KEY", raising=False)
    code = main(["--dataset", "nope", "--project-dir", str(PROJECT_ROOT)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Unknown dataset 'nope'" in err and "run finetune first" not in err
