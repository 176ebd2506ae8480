"""Requests in words over real HTTP: a known user with words, a new user with words (and
likes), words alone, and what bad words get back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from crossrec.serving.catalogue import BadRequestError
from crossrec.serving.words import words_model

from .conftest import DATASET


def _classes(project: Path) -> dict[str, str]:
    """item id -> its planted class name (the synthetic dataset's ground truth)."""
    from crossrec.data.synthetic import CLASSES

    raw = pd.read_csv(project / "raw" / DATASET / "items.csv")
    return {str(i): CLASSES[c]["name"] for i, c in zip(raw["item"], raw["content_class"],
                                                       strict=True)}


def _user_and_seen(project: Path) -> tuple[str, set[str]]:
    base = project / "data" / "02_intermediate" / DATASET
    inter = pd.read_parquet(base / "interactions.parquet")
    items = pd.read_parquet(base / "items.parquet").set_index("item_idx")["item_id"]
    users = pd.read_parquet(base / "users.parquet").set_index("user_idx")["user_id"]
    seen = set(items[inter.loc[inter["user_idx"] == 0, "item_idx"]].astype(str))
    return str(users[0]), seen


def _parts_add_up(answer: dict) -> None:
    assert abs(sum(answer["weights"].values()) - 1) < 1e-9
    for item in answer["items"]:
        assert item["score"] == pytest.approx(item["from_words"] + item["from_history"], abs=1e-5)


def test_search_in_words_finds_the_named_category(server, serve_project):
    classes = _classes(serve_project)
    for words, name in (("ocean harbour coral", "ocean"), ("desert cactus dune", "desert")):
        answer = server.client.get("/api/search", params={"q": words, "k": 5}).json()
        assert answer["query"] == words and answer["weights_from"] == "validation"
        assert set(answer["weights"]) == {"tower", "dense"}  # the mix used without history
        found = [classes[i["item_id"]] for i in answer["items"]]
        assert found.count(name) >= 4, (words, found)
        assert all(i["from_history"] == 0 for i in answer["items"])


def test_known_user_with_words_combines_history_and_words(server, serve_project):
    user, seen = _user_and_seen(serve_project)
    plain = server.client.get(f"/api/users/{user}/recommendations", params={"k": 8}).json()
    asked = server.client.get(
        f"/api/users/{user}/recommendations", params={"k": 8, "q": "forest pine trail"}
    ).json()
    assert asked["user_id"] == user and asked["query"] == "forest pine trail"
    ids = [i["item_id"] for i in asked["items"]]
    assert len(ids) == 8 and not set(ids) & seen
    _parts_add_up(asked)
    if asked["weights"]["history"] > 0:
        assert any(i["from_history"] != 0 for i in asked["items"])
    classes = _classes(serve_project)
    forest = sum(classes[i] == "forest" for i in ids)
    assert forest >= sum(classes[i["item_id"]] == "forest" for i in plain["items"])
    # filters still apply
    one = asked["items"][0]["item_id"]
    filtered = server.client.get(
        f"/api/users/{user}/recommendations",
        params={"k": 3, "q": "forest", "filter": f"item_id:{one}"},
    ).json()
    assert [i["item_id"] for i in filtered["items"]] == [one]


def test_new_user_with_words_and_likes(server, serve_project):
    classes = _classes(serve_project)
    city = [i for i, c in classes.items() if c == "city"][:2]
    words_only = server.client.post(
        "/api/recommendations", json={"query": "neon subway skyline", "k": 6}
    ).json()
    assert words_only["liked"] == [] and len(words_only["items"]) == 6
    assert sum(classes[i["item_id"]] == "city" for i in words_only["items"]) >= 4
    both = server.client.post(
        "/api/recommendations", json={"query": "neon subway", "liked": city, "k": 6}
    ).json()
    assert not {i["item_id"] for i in both["items"]} & set(city)  # liked items not offered
    _parts_add_up(both)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("get", "/api/search", {"params": {"q": ""}}, "q"),
        ("get", "/api/search", {"params": {"q": "   "}}, "q"),
        ("get", "/api/search", {"params": {"q": "x" * 501}}, "q"),
        ("get", "/api/search", {}, "q"),
        ("get", "/api/users/{user}/recommendations", {"params": {"q": " "}}, "q"),
        ("get", "/api/users/{user}/recommendations", {"params": {"q": "y" * 501}}, "q"),
        ("post", "/api/recommendations", {"json": {"query": "", "k": 3}}, "query"),
        ("post", "/api/recommendations", {"json": {"query": "z" * 501, "k": 3}}, "query"),
        ("post", "/api/recommendations", {"json": {"k": 3}}, "liked"),
    ],
)
def test_bad_words_are_422_naming_the_field(server, serve_project, method, path, kwargs, field):
    user, _ = _user_and_seen(serve_project)
    response = getattr(server.client, method)(path.format(user=user), **kwargs)
    assert response.status_code == 422, response.text
    body = response.json()
    named = body.get("field") or body["detail"][0]["loc"][-1]
    assert named == field
    assert len(response.content) < 2000  # the oversized text is not echoed back


def test_unknown_user_with_words_is_404(server):
    response = server.client.get("/api/users/nobody/recommendations", params={"q": "ocean"})
    assert response.status_code == 404 and response.json()["id"] == "nobody"


def test_a_model_without_item_text_refuses_words_by_name():
    serving = SimpleNamespace(artifacts=SimpleNamespace(item_texts=None))
    with pytest.raises(BadRequestError, match="no text") as err:
        words_model(serving)
    assert err.value.field == "q"
    serving.artifacts.item_texts = ["", ""]
    with pytest.raises(BadRequestError, match="no text"):
        words_model(serving)


def test_recommend_pipeline_answers_a_file_of_requests_in_words(serve_project, server):
    from .conftest import kedro_run

    user, seen = _user_and_seen(serve_project)
    classes = _classes(serve_project)
    liked = [i for i, c in classes.items() if c == "ocean"][:2]
    folder = serve_project / "data" / "05_model_input" / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    queries = folder / "word_queries.csv"
    pd.DataFrame(
        {
            "user": [user, "", ""],
            "query": ["forest pine", "desert dune cactus", "ocean tide"],
            "liked": ["", "", "|".join(liked)],
        }
    ).to_csv(queries, index=False)
    try:
        result = kedro_run(serve_project, "--pipelines", "recommend")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = serve_project / "data" / "07_model_output" / DATASET / "word_recommendations.parquet"
        lists = pd.read_parquet(out)
        assert lists.groupby("request")["rank"].max().tolist() == [20, 20, 20]
        first = lists[lists["request"] == 0]
        assert (first["user_id"] == user).all() and not set(first["item_id"]) & seen
        assert not set(lists.loc[lists["request"] == 2, "item_id"]) & set(liked)
        desert = lists[(lists["request"] == 1) & (lists["rank"] <= 5)]["item_id"]
        assert sum(classes[i] == "desert" for i in desert) >= 4
        assert lists["score"].to_numpy() == pytest.approx(
            (lists["from_words"] + lists["from_history"]).to_numpy(), abs=1e-4
        )
        # a bad row fails naming the file, the row and the column; nothing is half-written
        pd.DataFrame({"user": ["", "nobody"], "query": ["ocean", "forest"]}).to_csv(
            queries, index=False
        )
        before = out.read_bytes()
        bad = kedro_run(serve_project, "--pipelines", "recommend")
        assert bad.returncode != 0
        assert "word_queries" in bad.stderr + bad.stdout and "row 2" in bad.stderr + bad.stdout
        assert out.read_bytes() == before
    finally:
        queries.unlink(missing_ok=True)


def test_new_user_described_by_attributes(server, serve_project):
    """The synthetic users' region follows their favourite class: a user from the coast gets
    mostly ocean items; attributes with words split the score in two named parts."""
    classes = _classes(serve_project)
    coast = server.client.post(
        "/api/recommendations", json={"attributes": {"region": "coast", "age": 30}, "k": 6}
    ).json()
    assert coast["attributes_as_words"] == "age 30s, region coast"
    found = [classes[i["item_id"]] for i in coast["items"]]
    assert found.count("ocean") >= 3, found
    both = server.client.post(
        "/api/recommendations",
        json={"attributes": {"region": "town"}, "query": "desert dune", "k": 5},
    ).json()
    for item in both["items"]:
        assert item["score"] == pytest.approx(
            item["from_words"] + item["from_attributes"] + item["from_history"], abs=1e-5
        )
    assert both["attributes_used"] is True
    liked = [i for i, c in classes.items() if c == "city"][:1]
    with_history = server.client.post(
        "/api/recommendations", json={"attributes": {"region": "coast"}, "liked": liked, "k": 3}
    ).json()
    assert with_history["attributes_used"] is False  # said, not silently dropped
    bad = server.client.post("/api/recommendations", json={"attributes": {"shoe": "9"}})
    assert bad.status_code == 422 and bad.json()["field"] == "attributes"
    assert "region" in bad.json()["detail"]
    nan_age = server.client.post("/api/recommendations", json={"attributes": {"age": "old"}})
    assert nan_age.status_code == 422 and nan_age.json()["field"] == "attributes"


def test_the_words_model_is_fitted_when_the_server_starts(serve_project):
    """No request in words has to wait for the whole fit: serve fits it in the background."""
    import time

    from .conftest import Server

    srv = Server(serve_project).wait()
    try:
        deadline = time.time() + 120
        while "words model fitted" not in srv.log.read_text() and time.time() < deadline:
            time.sleep(0.5)
        assert "words model fitted" in srv.log.read_text(), srv.output()
        assert srv.client.get("/api/search", params={"q": "ocean"}).status_code == 200
    finally:
        srv.stop()
