"""Token encryption at rest and key rotation (library and ``flask tokens rotate-keys``)."""

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from b24app import create_app
from b24app.crypto import SecretUnreadable, TokenCipher
from b24app.extensions import db
from b24app.models import Portal, UserToken, utcnow
from b24app.services.gateway import close_gateway

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_round_trip_hides_the_secret():
    cipher = TokenCipher([OLD])

    ciphertext = cipher.encrypt("s1morf609228iwyjjpvfv6wsvuja4p8u")

    assert "s1morf609228" not in ciphertext
    assert cipher.decrypt(ciphertext) == "s1morf609228iwyjjpvfv6wsvuja4p8u"


def test_first_key_encrypts_and_every_key_decrypts():
    old_only = TokenCipher([OLD]).encrypt("token")
    both = TokenCipher([NEW, OLD])

    assert both.decrypt(old_only) == "token"
    assert not both.is_current(old_only)
    rotated = both.rotate(old_only)
    assert both.is_current(rotated)
    assert TokenCipher([NEW]).decrypt(rotated) == "token"


def test_unknown_key_is_reported_not_crashed():
    with pytest.raises(SecretUnreadable):
        TokenCipher([NEW]).decrypt(TokenCipher([OLD]).encrypt("token"))
    with pytest.raises(SecretUnreadable):
        TokenCipher([NEW]).decrypt("not a fernet token")


@pytest.fixture
def app_with_old_key(tmp_path):
    """An app whose stored secrets are all under OLD."""
    app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}", "TOKEN_KEYS": [OLD]}
    )
    cipher = TokenCipher([OLD])
    with app.app_context():
        db.create_all()
        portal = Portal(
            member_id="m" * 32,
            domain="example.bitrix24.com",
            client_endpoint="https://example.bitrix24.com/rest/",
            application_token_encrypted=cipher.encrypt("app-token"),
            installed_at=utcnow(),
        )
        db.session.add(portal)
        db.session.flush()
        for user_id in (1, 2):
            db.session.add(
                UserToken(
                    portal_id=portal.id,
                    user_id=user_id,
                    access_token_encrypted=cipher.encrypt(f"access-{user_id}"),
                    refresh_token_encrypted=cipher.encrypt(f"refresh-{user_id}"),
                    expires_at=utcnow(),
                )
            )
        db.session.commit()
    yield app
    close_gateway(app)


def test_rotate_keys_command_re_encrypts_everything_under_the_new_key(tmp_path, app_with_old_key):
    rotated_app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}", "TOKEN_KEYS": [NEW, OLD]}
    )

    result = rotated_app.test_cli_runner().invoke(args=["tokens", "rotate-keys"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted: 5, already current: 0, unreadable: 0" in result.output
    new_only = TokenCipher([NEW])
    with rotated_app.app_context():
        portal = db.session.scalars(select(Portal)).one()
        assert new_only.decrypt(portal.application_token_encrypted) == "app-token"
        tokens = db.session.scalars(select(UserToken).order_by(UserToken.user_id)).all()
        assert [new_only.decrypt(t.refresh_token_encrypted) for t in tokens] == [
            "refresh-1",
            "refresh-2",
        ]
    again = rotated_app.test_cli_runner().invoke(args=["tokens", "rotate-keys"])
    assert "re-encrypted: 0, already current: 5" in again.output
    close_gateway(rotated_app)


def test_rotate_keys_reports_values_no_key_can_read(tmp_path, app_with_old_key):
    wrong_app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}", "TOKEN_KEYS": [NEW]}
    )

    result = wrong_app.test_cli_runner().invoke(args=["tokens", "rotate-keys"])

    assert result.exit_code != 0
    assert "unreadable: 5" in result.output
    close_gateway(wrong_app)
