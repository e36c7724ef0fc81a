"""The example application in a real browser: Debian's headless chromium driven by Playwright, against
``examples/users`` served by uvicorn on 127.0.0.1 (fixtures in ``browser_conftest_helpers.py``).

Each test works in a fresh browser context and saves a screenshot per page or step under
``test-artifacts/screenshots/`` (git-ignored). Any dialog (``alert()``...) fails the test. Every browser action
is bounded (10 s); the module takes well under a minute.
"""

from __future__ import annotations

import re

import pytest

from .browser_conftest_helpers import browser_missing_reason, png_bytes

if reason := browser_missing_reason():
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import expect  # imported once the browser is known to exist

from . import browser_conftest_helpers as helpers
from .browser_conftest_helpers import Browsing, ExampleServer

# The fixtures of the helpers module, made visible to pytest in this module.
example_server = helpers.example_server
browser = helpers.browser
browsing = helpers.browsing

PASSWORD = "browser-pass-1"
TIMEOUT = 10_000
SCRIPT_NAME = "<script>alert(1)</script>"

pytestmark = pytest.mark.timeout(60)


def submit(b: Browsing, button: str, path: str, method: str = "POST") -> int:
    """Click ``button`` and return the status of the ``method`` request it sends to ``path``."""
    with b.page.expect_response(
        lambda r: r.request.method == method and r.url.split("?")[0] == b.url(path), timeout=TIMEOUT
    ) as info:
        b.page.click(button)
    b.page.wait_for_load_state("load")
    return int(info.value.status)


def create_user(b: Browsing, name: str, email: str, password: str = PASSWORD, step: str = "") -> int:
    """Fill in and send the "New user" form; returns the new user's id (from the page it redirects to)."""
    b.goto("/users/new")
    if step:
        b.shot(f"{step} form")
    b.page.fill("input[name=name]", name)
    b.page.fill("input[name=email]", email)
    b.page.fill("input[name=password]", password)
    assert submit(b, "#new-user button[type=submit]", "/users/new") == 302
    expect(b.page).to_have_url(re.compile(r"/users/\d+$"), timeout=TIMEOUT)
    return int(b.page.url.rsplit("/", 1)[1])


def api_create(b: Browsing, name: str) -> None:
    response = b.page.request.post(
        b.url("/api/v1/users/"), data={"name": name, "email": f"{name}@example.test", "password": PASSWORD},
        timeout=TIMEOUT,
    )  # fmt: skip
    assert response.status == 201, response.text()


# ---------------------------------------------------------------------------------------------- scenarios
def test_create_user_through_the_form_shows_a_flash(browsing: Browsing) -> None:
    b = browsing
    b.goto("/")
    b.shot("home")
    b.page.click("header >> text=New user")
    expect(b.page).to_have_url(b.url("/users/new"))
    user_id = create_user(b, "Ada Lovelace", "ada@example.test", step="new user")
    flash = b.page.locator("p.flash.success")
    expect(flash).to_have_text("Created user Ada Lovelace.")
    expect(b.page.locator("#user-name")).to_have_text("Ada Lovelace")
    expect(b.page.locator("dd").first).to_have_text("ada@example.test")
    b.shot("created with flash")
    # The flash is shown once; the home page lists the user with a link to the detail page.
    b.goto("/")
    expect(b.page.locator("p.flash")).to_have_count(0)
    link = b.page.locator("#users a.user-name", has_text="Ada Lovelace")
    expect(link).to_have_attribute("href", f"/users/{user_id}")
    b.shot("home lists user")
    link.click()
    expect(b.page).to_have_url(b.url(f"/users/{user_id}"))
    expect(b.page).to_have_title("Ada Lovelace · Ampulla example")
    b.shot("detail")


def test_validation_errors(browsing: Browsing) -> None:
    b = browsing
    b.goto("/users/new")
    # The browser's own checks (required, type=email, minlength) stop an empty form before it is sent.
    b.page.click("#new-user button[type=submit]")
    expect(b.page).to_have_url(b.url("/users/new"))
    expect(b.page.locator("#new-user input:invalid")).to_have_count(3)
    b.shot("browser validation")
    # Values the browser accepts but the server refuses: a blank name, an address without a dot in its domain.
    b.page.fill("input[name=name]", "   ")
    b.page.fill("input[name=email]", "grace@localhost")
    b.page.fill("input[name=password]", PASSWORD)
    assert submit(b, "#new-user button[type=submit]", "/users/new") == 400
    expect(b.page.locator("ul.errors li")).to_have_text(["A name is required.", "A valid email address is required."])
    expect(b.page.locator("input[name=email]")).to_have_value("grace@localhost")
    expect(b.page.locator("input[name=password]")).to_have_value("")
    b.shot("server validation")
    # A name that is taken is a form error too, and nothing is created.
    create_user(b, "Grace Hopper", "grace@example.test")
    b.goto("/users/new")
    b.page.fill("input[name=name]", "Grace Hopper")
    b.page.fill("input[name=email]", "other-grace@example.test")
    b.page.fill("input[name=password]", PASSWORD)
    assert submit(b, "#new-user button[type=submit]", "/users/new") == 400
    expect(b.page.locator("ul.errors li")).to_have_text(["That name or email is already taken."])
    b.shot("duplicate name")
    b.goto("/?q=grace")
    expect(b.page.locator("#users a.user-name")).to_have_text(["Grace Hopper"])


def test_upload_a_picture_and_see_it(browsing: Browsing, example_server: ExampleServer) -> None:
    b = browsing
    user_id = create_user(b, "Katherine Johnson", "katherine@example.test")
    expect(b.page.locator("#avatar")).to_have_count(0)
    b.shot("no picture")
    picture = png_bytes(32, 24)
    # The client's file name tries to leave the folder: the server names the file after the user id.
    b.page.set_input_files(
        "input[name=avatar]", files=[{"name": "../../escape.png", "mimeType": "image/png", "buffer": picture}]
    )
    assert submit(b, "#avatar-form button[type=submit]", f"/users/{user_id}/avatar") == 302
    expect(b.page.locator("p.flash.success")).to_have_text("Picture updated.")
    avatar = b.page.locator("#avatar")
    expect(avatar).to_be_visible()
    expect(avatar).to_have_attribute("src", f"/avatars/{user_id}.png")
    expect(avatar).to_have_attribute("alt", "Picture of Katherine Johnson")
    # The image was fetched and decoded by the browser: its natural size is the PNG's.
    avatar.evaluate("img => img.decode()")
    assert avatar.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]") == [True, 32, 24]
    b.shot("picture shown")
    assert (example_server.avatars / f"{user_id}.png").read_bytes() == picture
    assert not list(example_server.avatars.parent.parent.rglob("escape.png"))
    # A file that is not a PNG, JPEG or GIF is refused with a message; the picture stays.
    b.page.set_input_files(
        "input[name=avatar]",
        files=[{"name": "evil.png", "mimeType": "image/png", "buffer": b"<svg onload='alert(1)'></svg>"}],
    )
    assert submit(b, "#avatar-form button[type=submit]", f"/users/{user_id}/avatar") == 302
    expect(b.page.locator("p.flash.error")).to_have_text("Only PNG, JPEG and GIF pictures are accepted.")
    expect(b.page.locator("#avatar")).to_have_attribute("src", f"/avatars/{user_id}.png")
    b.shot("refused file")
    # Submitting without choosing a file asks for one.
    assert submit(b, "#avatar-form button[type=submit]", f"/users/{user_id}/avatar") == 302
    expect(b.page.locator("p.flash.error")).to_have_text("Choose a picture to upload.")
    assert sorted(p.name for p in example_server.avatars.iterdir() if p.name.startswith(f"{user_id}.")) == [
        f"{user_id}.png"
    ]


def test_script_name_is_shown_escaped_and_no_dialog_opens(browsing: Browsing) -> None:
    b = browsing
    user_id = create_user(b, SCRIPT_NAME, "script@example.test")
    expect(b.page.locator("p.flash.success")).to_have_text(f"Created user {SCRIPT_NAME}.")
    expect(b.page.locator("#user-name")).to_have_text(SCRIPT_NAME)
    expect(b.page).to_have_title(f"{SCRIPT_NAME} · Ampulla example")
    expect(b.page.locator("script")).to_have_count(1)  # only live.js
    b.shot("detail escaped")
    b.goto("/?q=script")
    expect(b.page.locator("#users a.user-name")).to_have_text([SCRIPT_NAME])
    expect(b.page.locator("#users a.user-name")).to_have_attribute("href", f"/users/{user_id}")
    expect(b.page.locator("script")).to_have_count(1)
    b.shot("index escaped")
    b.goto("/escaping")
    expect(b.page.locator("#escaped")).to_have_text(SCRIPT_NAME)
    expect(b.page.locator("#trusted em")).to_have_text("trusted")
    b.shot("escaping page")
    b.page.click("text=?text=<b>bold?</b>")
    expect(b.page.locator("#escaped")).to_have_text("<b>bold?</b>")
    expect(b.page.locator("#escaped b")).to_have_count(0)
    b.shot("escaping page bold")
    b.page.wait_for_timeout(300)  # a script that ran would have opened its dialog by now
    b.assert_no_dialog()
    assert b.page_errors == []


def test_guest_page_markup_cannot_run_script(browsing: Browsing) -> None:
    # /guest/<guest> echoes its value as HTML (the seed's view); the Content-Security-Policy keeps an injected
    # event handler from running, so no dialog opens.
    b = browsing
    response = b.goto("/guest/<img src=x onerror=alert(1)>")
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    b.shot("guest")
    b.page.wait_for_timeout(300)
    b.assert_no_dialog()
    b.goto("/guest/Ann")
    expect(b.page.locator("body")).to_have_text("Hello Ann as Guest")


def test_paginate_and_search(browsing: Browsing) -> None:
    b = browsing
    for i in range(1, 24):
        api_create(b, f"pager-{i:02d}")
    b.goto("/")
    b.page.fill("input[name=q]", "pager-")
    assert submit(b, "form.search button[type=submit]", "/", method="GET") == 200
    rows = b.page.locator("#users a.user-name")
    expect(rows).to_have_text([f"pager-{i:02d}" for i in range(1, 11)])
    expect(b.page.locator(".page-info")).to_have_text("Page 1 of 3")
    expect(b.page.locator("a[rel=prev]")).to_have_count(0)
    expect(b.page.locator("input[name=q]")).to_have_value("pager-")
    b.shot("page 1")
    b.page.click("a[rel=next]")
    expect(b.page.locator(".page-info")).to_have_text("Page 2 of 3")
    expect(rows).to_have_text([f"pager-{i:02d}" for i in range(11, 21)])
    assert "q=pager-" in b.page.url and "page=2" in b.page.url
    b.shot("page 2")
    b.page.click("a[rel=next]")
    expect(b.page.locator(".page-info")).to_have_text("Page 3 of 3")
    expect(rows).to_have_text(["pager-21", "pager-22", "pager-23"])
    expect(b.page.locator("a[rel=next]")).to_have_count(0)
    b.shot("page 3")
    b.page.click("a[rel=prev]")
    expect(b.page.locator(".page-info")).to_have_text("Page 2 of 3")
    # A search with no match says so.
    b.page.fill("input[name=q]", "nobody-here")
    assert submit(b, "form.search button[type=submit]", "/", method="GET") == 200
    expect(b.page.locator("#empty")).to_contain_text("No users match “nobody-here”")
    b.shot("no match")
    # A page number that is not one is a 404 page.
    assert b.goto("/?page=abc").status == 404
    expect(b.page.locator("h1")).to_have_text("404 Not Found")
    b.shot("bad page 404")


def test_live_count_updates_over_the_websocket(browsing: Browsing) -> None:
    b = browsing
    b.goto("/")
    live = b.page.locator("#live-count")
    expect(live).to_have_text(re.compile(r"^\d+ users$"), timeout=TIMEOUT)
    before = int((live.text_content() or "").split()[0])
    b.shot("live count")
    api_create(b, "live-one")
    expect(live).to_have_text(f"{before + 1} users", timeout=TIMEOUT)
    api_create(b, "live-two")
    expect(live).to_have_text(f"{before + 2} users", timeout=TIMEOUT)
    b.shot("live count updated")
    # The detail page has the live count too (it is in the base layout).
    b.goto("/about")
    expect(live).to_have_text(f"{before + 2} users", timeout=TIMEOUT)
    b.shot("about")


def test_leaving_a_page_logs_no_server_error(browsing: Browsing, example_server: ExampleServer) -> None:
    b = browsing
    logged_before = len(example_server.server.output())
    b.goto("/")
    live = b.page.locator("#live-count")
    expect(live).to_have_text(re.compile(r"^\d+ users$"), timeout=TIMEOUT)
    before = int((live.text_content() or "").split()[0])
    b.goto("/about")  # the home page's WebSocket is closed by the browser
    expect(live).to_have_text(f"{before} users", timeout=TIMEOUT)
    api_create(b, "leaver")
    expect(live).to_have_text(f"{before + 1} users", timeout=TIMEOUT)
    b.page.wait_for_timeout(2_500)  # the abandoned view polls once a second
    logged = example_server.server.output()[logged_before:]
    errors = [line for line in logged.splitlines() if "ERROR" in line or "Traceback" in line]
    assert errors == [], logged[-3000:]
