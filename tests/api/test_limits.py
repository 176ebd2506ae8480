"""Hostile input over real HTTP: bodies bounded whatever their framing, errors that stay small
and serialisable, filters, id trimming, uploads, reloads of a broken version, offline docs."""

from __future__ import annotations

import re
import select
import shutil
import socket
from pathlib import Path

import pandas as pd

from .conftest import DATASET
from .media import png_bytes

#: what the server accepts as a JSON body (crossrec.api.app.MAX_JSON_BYTES)
MAX_JSON_BYTES = 1_000_000


def _items(project: Path) -> pd.DataFrame:
    return pd.read_parquet(project / "data" / "02_intermediate" / DATASET / "items.parquet")


def _a_user(project: Path) -> str:
    users = pd.read_parquet(project / "data" / "02_intermediate" / DATASET / "users.parquet")
    return str(users.sort_values("user_idx")["user_id"].iloc[0])


def post_chunked(
    port: int, path: str, content_type: str, total: int, prefix: bytes = b""
) -> tuple[int, int, bytes]:
    """POST ``prefix`` then ``total`` bytes with Transfer-Encoding: chunked (no Content-Length),
    stopping as soon as the server answers; returns (status, bytes sent, answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    sent, chunk = 0, b"a" * (1 << 16)
    try:
        sock.sendall(head.encode() + b"%x\r\n%s\r\n" % (len(prefix), prefix))
        while sent < total:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:  # the server answered early
                break
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    while b"}" not in answer:
        data = sock.recv(4096)
        if not data:
            break
        answer += data
    sock.close()
    return int(answer.split(b" ", 2)[1]), sent, answer


# ----------------------------------------------------------------------------- body size
def test_a_chunked_json_body_is_bounded_while_read(server):
    status, sent, answer = post_chunked(
        server.port, "/api/recommendations", "application/json", 50_000_000, b'{"liked": ["'
    )
    assert status == 413 and b'"field":"body"' in answer
    assert sent < 10 * MAX_JSON_BYTES  # refused early, not after reading 50 MB
    assert server.process.poll() is None


def test_a_chunked_upload_is_bounded_while_read(server):
    part = (
        b'--zz\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG"
    )
    form = "multipart/form-data; boundary=zz"
    status, sent, answer = post_chunked(server.port, "/api/items/new", form, 50_000_000, part)
    assert status == 413 and b'"field":"body"' in answer and sent < 20_000_000


def test_a_declared_large_body_is_refused_before_it_is_read(server):
    response = server.client.post(
        "/api/recommendations",
        data=b"x" * (MAX_JSON_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


# ----------------------------------------------------------------------------- 422, small
def test_nan_and_infinity_are_422_not_500(server):
    for body in (
        '{"liked":["1"],"k":NaN}',
        '{"liked":["1"],"k":Infinity}',
        '{"attributes":{"age":NaN}}',
        '{"liked":[NaN]}',
    ):
        response = server.client.post(
            "/api/recommendations", data=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]


def test_bodies_that_do_not_parse_are_422(server):
    json_type = {"content-type": "application/json"}
    for body in [b"[" * 100_000, b'{"liked": ["\xff\xfe"]}', b"{not json"]:
        response = server.client.post("/api/recommendations", data=body, headers=json_type)
        assert response.status_code == 422, (body[:20], response.text)
    broken = server.client.post(
        "/api/items/new",
        data=b"\xff" * 1000,
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert broken.status_code == 422, broken.text


def test_an_error_never_echoes_unbounded_input(server):
    ids = [str(i) for i in range(100_000)]
    response = server.client.post("/api/recommendations", json={"liked": ids, "k": 5})
    assert response.status_code == 422 and len(response.content) < 5_000
    assert response.json()["detail"][0]["loc"][-1] == "liked"
    long_id = "x" * 50_000
    response = server.client.post("/api/recommendations", json={"liked": [long_id], "k": 5})
    assert response.status_code == 404 and len(response.content) < 1_000
    long_filter = server.client.get("/api/search", params={"q": "sea", "filter": "y" * 5000})
    assert long_filter.status_code == 422 and len(long_filter.content) < 1_000


# ----------------------------------------------------------------------------- filters
def _ids(server, user: str, *filters: str) -> set[str]:
    params = [("k", "100"), ("exclude_seen", "false"), *(("filter", f) for f in filters)]
    response = server.client.get(f"/api/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    return {item["item_id"] for item in response.json()["items"]}


def test_filters_or_within_an_attribute_and_across_attributes(server, serve_project):
    user, items = _a_user(serve_project), _items(serve_project).set_index("item_id")
    ocean = _ids(server, user, "description:ocean")
    desert = _ids(server, user, "description:desert")
    assert ocean and desert and ocean != desert
    assert _ids(server, user, "description:ocean", "description:desert") == ocean | desert
    both = _ids(server, user, "description:ocean", "title:harbour")
    expected = {i for i in ocean if "harbour" in str(items.loc[i, "title"]).lower()}
    assert both == expected


def test_a_filter_on_item_id_matches_the_whole_id(server, serve_project):
    user = _a_user(serve_project)
    first = str(_items(serve_project)["item_id"].iloc[1])
    assert _ids(server, user, f"item_id:{first}") == {first}
    assert _ids(server, user, f"item_id:{first[:-1]}") == set()
    assert _ids(server, user, f"item_id: {first} ") == {first}


def test_repeated_filters_in_a_body_are_alternatives(server, serve_project):
    items = _items(serve_project)["item_id"].astype(str).tolist()
    body = {"liked": items[:2], "k": 5, "filters": {"item_id": [items[5], items[6]]}}
    response = server.client.post("/api/recommendations", json=body)
    assert response.status_code == 200, response.text
    assert {i["item_id"] for i in response.json()["items"]} == {items[5], items[6]}


def test_the_filter_rule_is_in_the_openapi_description(server):
    spec = server.client.get("/openapi.json").json()
    get = spec["paths"]["/api/users/{user_id}/recommendations"]["get"]
    (param,) = [p for p in get["parameters"] if p["name"] == "filter"]
    assert "(OR)" in param["description"] and "(AND)" in param["description"]


# ----------------------------------------------------------------------------- ids
def test_ids_are_trimmed_everywhere(server, serve_project):
    user = _a_user(serve_project)
    item = str(_items(serve_project)["item_id"].iloc[0])
    response = server.client.get(f"/api/users/%20{user}%20/recommendations", params={"k": 3})
    assert response.status_code == 200 and response.json()["user_id"] == user
    similar = server.client.get(f"/api/items/%20{item}%09/similar", params={"k": 3})
    assert similar.status_code == 200 and similar.json()["item"]["item_id"] == item
    liked = server.client.post("/api/recommendations", json={"liked": [f" {item} "], "k": 3})
    assert liked.status_code == 200 and liked.json()["liked"] == [item]
    explain = server.client.get(f"/api/users/{user}%20/explain/%20{item}")
    assert explain.status_code == 200 and explain.json()["user_id"] == user
    assert server.client.get(f"/api/items/%20{item}/image").status_code == 200


# ----------------------------------------------------------------------------- uploads
def test_an_upload_error_does_not_name_the_servers_temp_path(server):
    fake = b"RIFF" + b"this is text, not a wave file " * 20
    for field in ("audio", "image"):
        response = server.client.post("/api/items/new", files={field: ("x.wav", fake, "audio/wav")})
        assert response.status_code == 422 and response.json()["field"] == field
        assert "crossrec-upload" not in response.text and "/tmp" not in response.text


def test_a_field_given_twice_is_422_naming_it(server):
    files = [
        ("image", ("a.png", png_bytes(), "image/png")),
        ("image", ("b.png", png_bytes(), "image/png")),
    ]
    response = server.client.post("/api/items/new", files=files)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "image" and "more than once" in response.json()["detail"]
    twice = server.client.post("/api/items/new", data={"title": ["a", "b"]})
    assert twice.status_code == 422 and twice.json()["field"] == "title"


# ----------------------------------------------------------------------------- reload
def test_a_broken_newest_version_is_refused_by_name_and_the_old_one_kept(server, serve_project):
    models = serve_project / "data" / "06_models" / DATASET / "trained_model.pkl"
    newest = sorted(p for p in models.iterdir() if p.is_dir())[-1]
    broken = models / "2999-01-01T00.00.00.000Z"
    try:
        broken.mkdir()
        whole = (newest / "trained_model.pkl").read_bytes()
        (broken / "trained_model.pkl").write_bytes(whole[: len(whole) // 3])
        before = server.client.get("/api/health").json()["model_version"]
        response = server.client.post("/api/admin/reload")
        assert response.status_code == 500, response.text
        body = response.json()
        assert body["refused"] == broken.name and body["model_version"] == before
        assert broken.name in body["detail"] and "still serving" in body["detail"]
        assert "internal error" not in body["detail"]
        assert server.client.get("/api/health").json()["model_version"] == before
        assert server.client.get("/api/model").status_code == 200
    finally:
        shutil.rmtree(broken, ignore_errors=True)


# ----------------------------------------------------------------------------- docs
def test_docs_work_offline(server):
    html = server.client.get("/docs").text
    assert "swagger-ui" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), html
    for asset in re.findall(r"""(?:src|href)="(/docs/assets/[^"]+)\"""", html):
        response = server.client.get(asset)
        assert response.status_code == 200 and len(response.content) > 1000, asset
    assert server.client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
