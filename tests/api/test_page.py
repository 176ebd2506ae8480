"""The web page in a real headless browser (Debian's chromium driven by Playwright, no browser
download): pick a user, see posters and titles, open an explanation, like items, upload a new
item and see who it reaches."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .media import png_bytes

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no system browser at /usr/bin/chromium (apt-get install -y chromium; .ci/run does)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright is not installed (pip install -e '.[dev]')",
    ),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def _new_page(browser):
    """A page in its own context (its own cookies)."""
    page = browser.new_context(viewport={"width": 1200, "height": 1400}).new_page()
    page.set_default_timeout(60_000)
    return page


@pytest.fixture(scope="module")
def page(browser, server):
    page = _new_page(browser)
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#user option').length > 0")
    yield page
    page.context.close()


def test_user_recommendations_with_posters_and_explanation(page, tmp_path):
    assert "synthetic_multimodal" in page.inner_text("#model")
    page.fill("#k", "6")
    page.click("#recommend")
    page.wait_for_selector("#user-results .card")
    cards = page.query_selector_all("#user-results .card")
    assert len(cards) == 6
    page.wait_for_function(
        "[...document.querySelectorAll('#user-results .card img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert all(card.query_selector(".title").inner_text().strip() for card in cards)
    cards[0].query_selector("button").click()
    page.wait_for_function("document.querySelector('#parts').rows.length > 3")
    sentence = page.inner_text("#explanation")
    assert "is recommended to user" in sentence
    assert "total (= score)" in page.inner_text("#parts")
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)


def test_like_items_then_recommend(page):
    page.fill("#search", "the")
    page.click("#search-go")
    page.wait_for_selector("#search-results .card button")
    buttons = page.query_selector_all("#search-results .card button")
    liked = [buttons[0], buttons[1]]
    for button in liked:
        button.click()
    assert len(page.query_selector_all("#liked-list .liked")) == 2
    page.click("#recommend-liked")
    page.wait_for_selector("#liked-results .card")
    assert len(page.query_selector_all("#liked-results .card")) == int(page.input_value("#k"))


def test_upload_a_new_item_and_see_who_it_reaches(page, tmp_path):
    poster = tmp_path / "poster.png"
    poster.write_bytes(png_bytes())
    page.fill("#text-fields input[name=title]", "Harbour tide")
    page.fill("#text-fields input[name=description]", "ocean wave sailor")
    page.set_input_files("#upload-form input[name=image]", str(poster))
    page.click("#upload")
    page.wait_for_selector("#reached", timeout=120_000)
    assert page.inner_text("#reached").startswith("Would reach")
    assert page.query_selector_all("#upload-result .card")


def test_ask_in_words_with_and_without_history(page):
    page.fill("#q", "ocean harbour")
    page.click("#recommend")
    page.wait_for_function("document.querySelector('#user-results .card .parts') !== null")
    parts = page.inner_text("#user-results .card .parts")
    assert parts.startswith("words ") and "history" in parts
    page.fill("#q", "")
    page.fill("#ask", "desert dune cactus")
    page.click("#ask-go")
    page.wait_for_selector("#ask-results .card .parts")
    assert len(page.query_selector_all("#ask-results .card")) == int(page.input_value("#k"))
    page.fill("#ask", "   ")
    page.click("#ask-go")
    page.wait_for_selector("#ask-results .error")
    assert "query must hold some words" in page.inner_text("#ask-results .error")


def test_errors_are_shown_not_swallowed(page):
    page.fill("#filter", "colour:blue")
    page.click("#recommend")
    page.wait_for_selector("#user-results .error")
    assert "unknown item attribute 'colour'" in page.inner_text("#user-results .error")
    page.fill("#filter", "")


def test_the_page_behind_an_api_key_signs_in_once_and_shows_posters(browser, keyed_server):
    from .conftest import API_KEY

    page = _new_page(browser)
    page.goto(keyed_server.url + "/")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.is_visible("#signin") and "401" in page.inner_text("#model")
    page.fill("#apikey", "wrong")
    page.click("#signin-go")
    page.wait_for_function("document.querySelector('#model').textContent.includes('wrong')")
    page.fill("#apikey", API_KEY)
    page.click("#signin-go")
    page.wait_for_function("document.querySelectorAll('#user option').length > 0")
    assert page.is_hidden("#signin") and page.input_value("#apikey") == ""
    assert "crossrec_session" not in page.evaluate("document.cookie")  # HttpOnly
    page.fill("#k", "4")
    page.click("#recommend")
    page.wait_for_selector("#user-results .card img")
    page.wait_for_function(
        "[...document.querySelectorAll('#user-results .card img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.goto(keyed_server.url + "/docs")  # the session opens the docs too, served offline
    page.wait_for_selector(".swagger-ui .opblock")
    page.context.close()
