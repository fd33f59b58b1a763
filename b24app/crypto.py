"""Encryption of stored secrets (tokens) with rotatable Fernet keys."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


class TokenCipher:
    """Encrypts with the first key of ``TOKEN_KEYS`` and decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._fernets = [Fernet(key) for key in keys]
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, secret: str) -> str:
        """Return ``secret`` encrypted under the newest key."""
        return self._multi.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Return the secret behind ``ciphertext``; raise SecretUnreadable if no key fits."""
        try:
            return self._multi.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable("no configured key decrypts this value") from exc

    def is_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` is already under the newest key."""
        try:
            self._fernets[0].decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ``ciphertext`` under the newest key (keeping its timestamp)."""
        try:
            return self._multi.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable("no configured key decrypts this value") from exc


def init_cipher(app: Flask) -> None:
    """Build the app's cipher from ``TOKEN_KEYS``."""
    app.extensions["token_cipher"] = TokenCipher(app.config["TOKEN_KEYS"])


def cipher() -> TokenCipher:
    """Return the current app's cipher."""
    found: TokenCipher = current_app.extensions["token_cipher"]
    return found
