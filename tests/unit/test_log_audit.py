"""The session-wide log audit finds secrets wherever and whenever they were logged."""

from __future__ import annotations

import logging

import b24sandbox.tokens
from tests.log_audit import LogAudit, distinctive_runs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJlc2ln"


def record(message: str, name: str = "b24app.test") -> logging.LogRecord:
    """A log record built directly (the app's scrubbing factory is not involved)."""
    return logging.makeLogRecord({"name": name, "msg": message, "levelno": logging.INFO})


def test_a_secret_logged_before_it_was_known_is_found() -> None:
    audit = LogAudit()
    audit.emit(record("POST /rest/profile auth=s1morf609228iwyjjpvfv6wsvuja4p8u", "werkzeug"))
    audit.emit(record("nothing to see"))

    audit.add_secret("s1morf609228iwyjjpvfv6wsvuja4p8u", "sandbox token")

    assert audit.leaks() == ["sandbox token s1mo... in a record of werkzeug"]


def test_records_without_secrets_pass() -> None:
    audit = LogAudit()
    audit.add_secret("s1morf609228iwyjjpvfv6wsvuja4p8u", "sandbox token")
    audit.add_secret("Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg=", "TOKEN_KEYS")

    audit.emit(record("bound order 7 to deal 3 for member a1b2c3d4e5f60718293a4b5c6d7e8f90"))
    audit.emit(record("auth=[redacted] refreshed"))

    assert audit.leaks() == []


def test_keys_without_padding_and_jwt_signatures_are_found() -> None:
    audit = LogAudit()
    audit.add_secret("Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg=", "TOKEN_KEYS")
    audit.add_secret(JWT, "session token")

    audit.emit(record("key Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg in config"))
    audit.emit(record(f"signature {JWT.rsplit('.', 1)[1]} only"))

    assert sorted(audit.leaks()) == [
        "TOKEN_KEYS Zm9v... in a record of b24app.test",
        "session token c2ln... in a record of b24app.test",
    ]
    assert distinctive_runs(JWT) == {JWT.rsplit(".", 1)[1]}


def test_any_jwt_or_fernet_text_in_a_record_is_a_leak() -> None:
    audit = LogAudit()

    audit.emit(record(f"Authorization: Bearer {JWT}"))
    audit.emit(record("stored gAAAAABlZ2V0dGluZ3Rva2VuZW5jcnlwdGVkdmFsdWVz=="))

    assert len(audit.leaks()) == 2


def test_every_sandbox_token_is_collected_while_installed() -> None:
    audit = LogAudit()
    audit.install()
    try:
        issued = b24sandbox.tokens.new_token()
    finally:
        audit.uninstall()
    after = b24sandbox.tokens.new_token()

    assert audit.secrets == {issued: "sandbox token"}
    assert after not in audit.secrets
