"""After a refresh, `crossrec serve` and the recommend pipeline serve the refreshed model: the
new item and the new user of the increment answer over real HTTP. Runs on a private copy of the
served scratch project, so the other API tests keep serving the trained model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.api.conftest import DATASET, Server, kedro_run

NEW_ITEM, NEW_USER = "item900", "user900"


def _write_increment(project: Path) -> None:
    """A new user, a new item (text only: it has no interaction before this batch), and a
    known user who meets the new item."""
    ingested = project / "data" / "02_intermediate" / DATASET
    late = int(pd.read_parquet(ingested / "interactions.parquet")["timestamp"].max()) + 10
    known_user = str(pd.read_parquet(ingested / "users.parquet")["user_id"].iloc[0])
    known_item = str(pd.read_parquet(ingested / "items.parquet")["item_id"].iloc[0])
    folder = project / "raw" / DATASET / "increments" / "0001"
    folder.mkdir(parents=True)
    rows = [
        (NEW_USER, NEW_ITEM, late),
        (NEW_USER, known_item, late + 1),
        (known_user, NEW_ITEM, late + 2),
    ]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        folder / "interactions.csv", index=False
    )
    pd.DataFrame(
        [{"item_id": NEW_ITEM, "title": "A brand new one", "description": "arrived today"}]
    ).to_csv(folder / "items.csv", index=False)


@pytest.fixture(scope="module")
def refreshed_project(serve_project, tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("refreshed") / "project"
    shutil.copytree(serve_project, project, ignore=shutil.ignore_patterns("server-*.log"))
    _write_increment(project)
    result = kedro_run(
        project, "--pipelines", "refresh", "--params", f"dataset={DATASET},refresh.epochs=1"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project


def test_serve_loads_the_refreshed_model_with_its_new_item_and_user(refreshed_project):
    srv = Server(refreshed_project).wait()
    try:
        version = srv.client.get("/api/health").json()["model_version"]
        assert version.startswith("refresh-"), srv.output()
        similar = srv.client.get(f"/api/items/{NEW_ITEM}/similar", params={"k": 3})
        assert similar.status_code == 200, similar.text
        found = srv.client.get("/api/items", params={"q": "brand new"}).json()["items"]
        assert [i["item_id"] for i in found] == [NEW_ITEM]
        recs = srv.client.get(f"/api/users/{NEW_USER}/recommendations", params={"k": 5})
        assert recs.status_code == 200, recs.text
        body = recs.json()
        assert body["model_version"] == version
        # the new user's own items are seen: never recommended back
        assert NEW_ITEM not in [r["item_id"] for r in body["items"]]
        # nothing newer: a reload keeps the refreshed model
        assert srv.client.post("/api/admin/reload").json() == {
            "reloaded": False,
            "model_version": version,
        }
    finally:
        srv.stop()


def test_recommend_pipeline_lists_the_refreshed_users_and_items(refreshed_project):
    result = kedro_run(refreshed_project, "--pipelines", "recommend")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = refreshed_project / "data" / "07_model_output" / DATASET
    recs = pd.read_parquet(out / "recommendations.parquet")
    similar = pd.read_parquet(out / "similar_items.parquet")
    assert NEW_USER in set(recs["user_id"].astype(str))
    assert NEW_ITEM in set(similar["item_id"].astype(str))
