"""Behind an API key: what is public (the page shell, health, signing in), what needs the key
(everything else, docs included), and the session cookie the page signs in for."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import requests

from crossrec.api.guard import is_loopback

from .conftest import API_KEY, DATASET, project_env

PROTECTED = ["/api/model", "/docs", "/openapi.json", "/docs/assets/swagger-ui.css"]


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1.evil.com", "127.evil"])
def test_a_key_is_required_off_loopback(serve_project, host):
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossrec",
            "serve",
            "--project-dir",
            str(serve_project),
            "--dataset",
            DATASET,
            "--env",
            "serve",
            "--host",
            host,
        ],
        env={k: v for k, v in project_env(serve_project).items() if k != "CROSSREC_API_KEY"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "CROSSREC_API_KEY" in refused.stderr


def test_loopback_is_an_address_not_a_prefix():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["127.0.0.1.evil.com", "0.0.0.0", "10.0.0.1", "", "::"]))


def test_only_the_page_shell_and_health_are_public(keyed_server):
    client = keyed_server.client
    assert client.get("/").status_code == 200
    assert client.get("/api/health").status_code == 200
    for path in PROTECTED:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": API_KEY}).status_code == 200, path


def test_signing_in_sets_a_strict_httponly_cookie_that_opens_the_api(keyed_server, serve_project):
    base = keyed_server.url
    items = pd.read_parquet(serve_project / "data" / "02_intermediate" / DATASET / "items.parquet")
    poster = f"/api/items/{items['item_id'].astype(str).iloc[0]}/image"
    with requests.Session() as browser:
        wrong = browser.post(base + "/api/session", json={"key": "guess"}, timeout=30)
        assert wrong.status_code == 401 and not browser.cookies
        assert browser.get(base + poster, timeout=30).status_code == 401
        signed = browser.post(base + "/api/session", json={"key": API_KEY}, timeout=30)
        assert signed.status_code == 200, signed.text
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert API_KEY.lower() not in cookie  # the cookie is not the key itself
        for path in [poster, *PROTECTED]:
            assert browser.get(base + path, timeout=30).status_code == 200, path
        browser.delete(base + "/api/session", timeout=30)
        assert browser.get(base + "/api/model", timeout=30).status_code == 401
