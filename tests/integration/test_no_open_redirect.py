"""No URL of the app sends the browser elsewhere, whatever redirect-like parameter it gets.

The OAuth callback is where an open redirect would usually hide: it answers a page, on
success and on failure alike, with no Location, no refresh and no link or script source
off the app's own origin, whatever ``redirect``, ``redirect_uri``, ``next``, ``return``,
``url`` or a forged ``state`` say. The other pages get the same parameters and must ignore
them too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from b24app.security import issue_oauth_state

PARAMETERS = ["redirect", "redirect_uri", "next", "return", "returnUrl", "url", "back", "goto"]
OFF_SITE = [
    "https://evil.example/",
    "//evil.example/path",
    "/\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "http://127.0.0.1:9/",
]


def assert_stays(response: Any, app_url: str) -> None:
    """No redirect, no refresh, and every URL the page names is the app's own."""
    assert not 300 <= response.status_code < 400, response.headers.get("location")
    assert "location" not in response.headers
    assert "refresh" not in response.headers
    text = response.text
    assert not re.search(r"http-equiv\s*=\s*[\"']?refresh", text, re.I)
    assert "evil.example" not in text and "javascript:" not in text
    for url in re.findall(r"(?:href|src|action)\s*=\s*\"([^\"]*)\"", text):
        parts = urlsplit(url)
        # Only the app's own paths, and the BX24 script of the (sandbox) portal.
        assert not parts.netloc or url.startswith(app_url) or url.endswith("/bx24.js"), url


def approve(portal24: Any, state: str, user: int) -> dict[str, str]:
    """Let ``user`` approve on the portal; return the callback's query (code, state...)."""
    sandbox = portal24.sandbox
    answer = portal24.http.get(
        f"{sandbox.oauth_url}/oauth/authorize/",
        params={"client_id": sandbox.client_id, "state": state, "user": user},
    )
    assert answer.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    portal24.seen.add(query["code"])
    return query


@pytest.mark.parametrize("target", OFF_SITE)
def test_a_completed_callback_stays_on_the_app(app: Any, portal24: Any, target: str) -> None:
    portal24.install()
    member_id = portal24.state()["member_id"]
    with app.test_request_context():
        state = issue_oauth_state(member_id, 2)
    query = approve(portal24, state, user=2)
    query.update({name: target for name in PARAMETERS})

    response = portal24.http.get(f"{portal24.app_url}/oauth/callback", params=query)

    assert response.status_code == 200
    assert "Access restored" in response.text
    assert_stays(response, portal24.app_url)


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize(
    "state", ["", "not-a-state", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "redirect=evil"]
)
def test_a_refused_callback_stays_on_the_app(
    app: Any, portal24: Any, state: str, target: str
) -> None:
    portal24.install()
    query = {"code": "x" * 32, "state": state, **{name: target for name in PARAMETERS}}

    response = portal24.http.get(f"{portal24.app_url}/oauth/callback", params=query)

    assert response.status_code == 400
    assert_stays(response, portal24.app_url)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/app"), ("POST", "/app"), ("POST", "/install"), ("GET", "/healthz")],
)
def test_other_pages_ignore_redirect_parameters(
    app: Any, portal24: Any, method: str, path: str
) -> None:
    params = {name: OFF_SITE[0] for name in PARAMETERS}

    response = portal24.http.request(method, f"{portal24.app_url}{path}", params=params)

    assert response.status_code in {200, 400}
    assert_stays(response, portal24.app_url)
