"""Secrets at rest and in answers: no plaintext token in the database or in error pages."""

from pathlib import Path

from sqlalchemy import inspect, text

from b24app.extensions import db
from tests.integration.conftest import POSTGRES


def every_stored_value(app):
    """Return every value of every row of every table, as text."""
    values = []
    with app.app_context():
        for table in inspect(db.engine).get_table_names():
            for row in db.session.execute(text(f'SELECT * FROM "{table}"')):
                values.extend(str(value) for value in row)
    return "\n".join(values)


def test_database_holds_no_plaintext_token(app, portal24, database_url, seen_secrets):
    portal24.install()
    for user_id in (1, 2, 3):
        portal24.session(user_id=user_id)
    secrets = {s for s in seen_secrets.values if len(s) == 32}  # Bitrix24-shaped tokens
    assert len(secrets) >= 7  # three users' pairs, the installer's and the app token

    stored = every_stored_value(app)

    assert "gAAAA" in stored  # ciphertext is there...
    assert not [s for s in secrets if s in stored]  # ...plaintext is not
    if not POSTGRES:
        path = Path(database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert not [s for s in secrets if s.encode() in raw]


def test_error_answers_carry_no_detail_or_token(app, portal24):
    portal24.install()
    tokens = portal24.token(1)
    tokens["access_token"] = tokens["access_token"][::-1]

    page = portal24.open(tokens=tokens)

    assert page.status_code == 401
    assert tokens["access_token"] not in page.text
    assert tokens["refresh_token"] not in page.text
    assert "Traceback" not in page.text


def test_json_errors_have_one_shape(app, portal24):
    checks = [
        portal24.http.get(f"{portal24.app_url}/api/nope"),
        portal24.http.post(f"{portal24.app_url}/api/me"),
        portal24.http.get(f"{portal24.app_url}/api/me", headers={"Authorization": "Basic eA=="}),
        portal24.http.post(
            f"{portal24.app_url}/events",
            content=b"\xff\xfe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]

    assert [r.status_code for r in checks] == [404, 405, 401, 400]
    for response in checks:
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
        assert body["error"]["message"]
