"""`crossrec serve` as a client sees it: a real server in a subprocess, real HTTP."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from .conftest import DATASET, MAX_UPLOAD_BYTES, Server, kedro_run
from .media import bomb_png_bytes, png_bytes, wav_bytes


def _frames(project: Path):
    base = project / "data" / "02_intermediate" / DATASET
    return (
        pd.read_parquet(base / "interactions.parquet"),
        pd.read_parquet(base / "items.parquet"),
        pd.read_parquet(base / "users.parquet"),
    )


def _user_ids(project: Path) -> list[str]:
    return _frames(project)[2].sort_values("user_idx")["user_id"].astype(str).tolist()


def _seen(project: Path, user_id: str) -> set[str]:
    inter, items, users = _frames(project)
    idx = int(users.loc[users["user_id"].astype(str) == user_id, "user_idx"].iloc[0])
    ids = items.set_index("item_idx")["item_id"].astype(str)
    return set(ids[inter.loc[inter["user_idx"] == idx, "item_idx"]])


def _model_files(project: Path) -> dict[str, str]:
    folder = project / "data" / "06_models" / DATASET / "trained_model.pkl"
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------- endpoints
def test_health_and_model_card(server):
    health = server.client.get("/api/health").json()
    assert health["status"] == "ok"
    card = server.client.get("/api/model").json()
    assert card["dataset"] == DATASET
    assert card["model_version"] == health["model_version"]
    assert card["config"]["model"]["fusion"]["strategy"] == "gated"
    assert set(card["modalities"]) == {"text", "image", "audio"}
    assert "recall@20" in card["test_metrics"]["test"]
    assert card["index"] == "exact"  # 48 items: far below recommend.ann.min_items
    assert server.client.get("/docs").status_code == 200
    assert (
        "/api/users/{user_id}/recommendations" in server.client.get("/openapi.json").json()["paths"]
    )


def test_top_k_for_a_known_user_excludes_seen_items(server, serve_project):
    user = _user_ids(serve_project)[0]
    body = server.client.get(f"/api/users/{user}/recommendations", params={"k": 7}).json()
    ids = [item["item_id"] for item in body["items"]]
    assert len(ids) == 7 and len(set(ids)) == 7
    assert not set(ids) & _seen(serve_project, user)
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    with_seen = server.client.get(
        f"/api/users/{user}/recommendations", params={"k": 48, "exclude_seen": "false"}
    ).json()
    assert len(with_seen["items"]) == 48


def test_filter_by_item_attribute(server, serve_project):
    user = _user_ids(serve_project)[1]
    body = server.client.get(
        f"/api/users/{user}/recommendations",
        params={"k": 5, "filter": "description:ocean", "exclude_seen": "false"},
    ).json()
    items = _frames(serve_project)[1].set_index("item_id")
    assert body["items"], body
    for item in body["items"]:
        assert "ocean" in str(items.loc[item["item_id"], "description"]).lower()


def test_new_user_from_liked_items(server, serve_project):
    items = _frames(serve_project)[1]
    liked = items["item_id"].astype(str).tolist()[:3]
    response = server.client.post("/api/recommendations", json={"liked": liked, "k": 5})
    assert response.status_code == 200, response.text
    ids = [item["item_id"] for item in response.json()["items"]]
    assert len(ids) == 5 and not set(ids) & set(liked)


def test_similar_items_overall_and_by_modality(server, serve_project):
    item = _frames(serve_project)[1]["item_id"].astype(str).iloc[0]
    overall = server.client.get(f"/api/items/{item}/similar", params={"k": 4}).json()
    assert overall["space"] == "model" and len(overall["items"]) == 4
    assert item not in [i["item_id"] for i in overall["items"]]
    by_image = server.client.get(f"/api/items/{item}/similar", params={"k": 4, "modality": "image"})
    assert by_image.status_code == 200, by_image.text
    assert by_image.json()["space"] == "image"


def test_explanation_parts_add_up_to_the_models_score(server, serve_project):
    user = _user_ids(serve_project)[2]
    recs = server.client.get(f"/api/users/{user}/recommendations", params={"k": 3}).json()
    for rec in recs["items"]:
        body = server.client.get(f"/api/users/{user}/explain/{rec['item_id']}").json()
        assert abs(sum(body["parts"].values()) - rec["score"]) < 1e-3 * max(1, abs(rec["score"]))
        assert abs(body["score"] - rec["score"]) < 1e-5 * max(1, abs(rec["score"]))
        # the default model is the mix: the content model's parts as the mix weighs them, the
        # ID-only twin's part and the user's mean content score taken out
        assert set(body["parts"]) == {
            "collaborative",
            "content_baseline",
            "text",
            "image",
            "audio",
            "id_twin",
            "centring",
        }
        weights = body["modality_weights"]
        assert set(weights) == {"text", "image", "audio"}
        assert abs(sum(weights.values()) - 1) < 1e-3
        assert body["history"] and body["sentence"].startswith(body["item"]["title"])
        assert body["sentence_by"] == "template"


def test_new_item_from_raw_media(server):
    files = {
        "image": ("poster.png", png_bytes(), "image/png"),
        "audio": ("clip.wav", wav_bytes(), "audio/wav"),
    }
    data = {"title": "Ocean harbour", "description": "ocean wave sailor tide", "k": "5"}
    response = server.client.post("/api/items/new", data=data, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inputs"] == ["audio", "image", "text"]
    assert len(body["nearest_items"]) == 5
    for user in body["reached_users"]:
        assert user["margin"] > 0


def test_poster_is_served_by_item_id(server, serve_project):
    item = _frames(serve_project)[1]["item_id"].astype(str).iloc[0]
    response = server.client.get(f"/api/items/{item}/image")
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "path, named",
    [
        ("/api/users/no-such-user/recommendations", "no-such-user"),
        ("/api/items/no-such-item/similar", "no-such-item"),
        ("/api/users/no-such-user/explain/x", "no-such-user"),
        ("/api/items/%2e%2e/image", "'..'"),
    ],
)
def test_unknown_ids_are_404_naming_the_id(server, path, named):
    response = server.client.get(path)
    assert response.status_code == 404
    assert named in response.json()["detail"]


def test_unknown_liked_item_is_404(server):
    response = server.client.post("/api/recommendations", json={"liked": ["nope-1"], "k": 3})
    assert response.status_code == 404 and "nope-1" in response.json()["detail"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"k": 0}, "k"),
        ({"k": 10_000}, "k"),
        ({"k": "ten"}, "k"),
        ({"exclude_seen": "maybe"}, "exclude_seen"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(server, serve_project, params, field):
    user = _user_ids(serve_project)[0]
    response = server.client.get(f"/api/users/{user}/recommendations", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


@pytest.mark.parametrize(
    "params, field, words",
    [
        ({"filter": "no_colon"}, "filter", "attribute:value"),
        ({"filter": "image_path:/etc"}, "filter", "unknown item attribute"),
        ({"filter": "colour:blue"}, "filter", "unknown item attribute 'colour'"),
    ],
)
def test_bad_filters_are_422(server, serve_project, params, field, words):
    user = _user_ids(serve_project)[0]
    response = server.client.get(f"/api/users/{user}/recommendations", params=params)
    assert response.status_code == 422
    assert response.json()["field"] == field and words in response.json()["detail"]


def test_bad_modality_and_bodies_are_422(server, serve_project):
    item = _frames(serve_project)[1]["item_id"].astype(str).iloc[0]
    response = server.client.get(f"/api/items/{item}/similar", params={"modality": "smell"})
    assert response.status_code == 422 and response.json()["field"] == "modality"
    empty = server.client.post("/api/recommendations", json={"liked": [], "k": 3})
    assert empty.status_code == 422 and empty.json()["field"] == "liked"
    big_k = server.client.post("/api/recommendations", json={"liked": [item], "k": 1000})
    assert big_k.status_code == 422 and big_k.json()["field"] == "k"
    garbage = server.client.post(
        "/api/recommendations", data=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422


@pytest.mark.parametrize(
    "files, data, status, field, words",
    [
        (
            {"image": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")},
            {},
            422,
            "image",
            "does not decode",
        ),
        (
            {"image": ("x.png", b"GIF89a" + os.urandom(64), "image/gif")},
            {},
            422,
            "image",
            "does not decode",
        ),
        ({"image": ("x.txt", b"hello world", "text/plain")}, {}, 422, "image", "not one of"),
        (
            {"image": ("bomb.png", bomb_png_bytes(), "image/png")},
            {},
            422,
            "image",
            "decompression bomb",
        ),
        (
            {"image": ("big.png", b"\x89PNG" + b"\0" * (MAX_UPLOAD_BYTES + 10), "image/png")},
            {},
            413,
            "image",
            "larger than",
        ),
        ({"audio": ("x.wav", wav_bytes()[:200], "audio/wav")}, {}, 422, "audio", "audio upload"),
        (
            {"audio": ("x.wav", b"RIFF" + os.urandom(300), "audio/wav")},
            {},
            422,
            "audio",
            "audio upload",
        ),
        ({}, {"image_path": "/etc/passwd"}, 422, "text", "unknown text field"),
        ({}, {"title": ""}, 422, "item", "at least one input"),
        ({}, {"title": "x" * 6000}, 422, "title", "characters"),
        ({"poster": ("p.png", png_bytes(), "image/png")}, {}, 422, "poster", "use image or audio"),
        ({}, {"title": "sea", "k": "many"}, 422, "k", "integer"),
    ],
    ids=[
        "corrupt-png",
        "corrupt-gif",
        "not-an-image",
        "bomb",
        "too-large",
        "cut-wav",
        "noise-wav",
        "path-field",
        "empty",
        "long-text",
        "unknown-file",
        "bad-k",
    ],
)
def test_bad_uploads_are_4xx_naming_the_problem(server, files, data, status, field, words):
    response = server.client.post("/api/items/new", data=data, files=files or None)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field and words in response.json()["detail"], response.text


def test_nothing_a_client_sends_changes_the_model_or_kills_the_server(server, serve_project):
    before = _model_files(serve_project)
    version = server.client.get("/api/health").json()["model_version"]
    for path in [
        "/api/items/..%2F..%2Fetc%2Fpasswd/image",
        "/api/users/%00/recommendations",
        "/api/items/" + "x" * 5000 + "/similar",
        "/api/users/1/explain/%2e%2e",
    ]:
        assert server.client.get(path).status_code in (404, 414, 422)
    assert server.client.post(
        "/api/items/new",
        data=b"\xff" * 1000,
        headers={"content-type": "multipart/form-data; boundary=zz"},
    ).status_code in (400, 422)
    assert server.client.get("/api/health").json()["model_version"] == version
    assert _model_files(serve_project) == before
    assert server.process.poll() is None


# ----------------------------------------------------------------------------- reload
def _train_another_version(project: Path, seed: int) -> None:
    """A newer trained_model version: finetune again with another seed."""
    params = f"dataset={DATASET},finetune.trainer.seed={seed}"
    nodes = ["--from-nodes", "build_training_data", "--to-nodes", "train_model"]
    result = kedro_run(project, *nodes, "--params", params)
    assert result.returncode == 0, result.stderr[-3000:]


def test_reload_swaps_atomically_while_requests_run(serve_project):
    srv = Server(serve_project).wait()
    seen_versions, failures, stop = set(), [], threading.Event()
    try:
        user = _user_ids(serve_project)[0]
        old = srv.client.get("/api/health").json()["model_version"]

        def hammer():
            client = type(srv.client)(srv.url)
            while not stop.is_set():
                response = client.get(f"/api/users/{user}/recommendations", params={"k": 5})
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    seen_versions.add(response.json()["model_version"])

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        unchanged = srv.client.post("/api/admin/reload").json()
        assert unchanged == {"reloaded": False, "model_version": old}
        # a newer trained_model version appears (finetune again, another seed)
        _train_another_version(serve_project, seed=99)
        reloaded = srv.client.post("/api/admin/reload").json()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        assert reloaded["reloaded"] is True and reloaded["previous"] == old
        new = reloaded["model_version"]
        assert new != old and new > old
        assert failures == []
        assert seen_versions == {old, new}
        assert srv.client.get("/api/model").json()["model_version"] == new
        # a signal does the same: SIGHUP after yet another version
        _train_another_version(serve_project, seed=98)
        srv.process.send_signal(signal.SIGHUP)
        deadline = time.time() + 120
        while srv.client.get("/api/health").json()["model_version"] == new:
            assert time.time() < deadline, srv.output()
            time.sleep(0.3)
    finally:
        stop.set()
        srv.stop()


# ----------------------------------------------------------------------------- recommend pipeline
def test_recommend_pipeline_writes_lists_with_the_model_version(serve_project, server):
    result = kedro_run(serve_project, "--pipelines", "recommend")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = serve_project / "data" / "07_model_output" / DATASET
    recs = pd.read_parquet(out / "recommendations.parquet")
    similar = pd.read_parquet(out / "similar_items.parquet")
    assert recs["model_version"].nunique() == 1 and similar["model_version"].nunique() == 1
    assert recs.groupby("user_id")["rank"].max().max() == 20
    inter, items, users = _frames(serve_project)
    pairs = set(zip(inter["user_idx"], inter["item_idx"], strict=True))
    assert not any((u, i) in pairs for u, i in zip(recs["user_idx"], recs["item_idx"], strict=True))
    assert set(similar["space"]) == {"model", "text", "image", "audio"}
    assert (similar["item_idx"] != similar["similar_idx"]).all()
