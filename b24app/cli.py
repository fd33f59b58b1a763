"""Command-line tools: ``flask tokens rotate-keys``, ``flask openapi``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select, update

from b24app.crypto import SecretUnreadable, cipher
from b24app.extensions import db
from b24app.models import Portal, UserToken

tokens_cli = AppGroup("tokens", help="Manage the encrypted tokens stored by the app.")


@tokens_cli.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored secret under the first key of TOKEN_KEYS.

    Run it after putting a new key first in TOKEN_KEYS (keeping the old ones after it);
    once it reports no unreadable value, the old keys can be removed.
    """
    token_cipher = cipher()
    rotated = current = unreadable = 0

    def rotate(ciphertext: str) -> str:
        """Return ``ciphertext`` under the newest key, counting what happened."""
        nonlocal rotated, current, unreadable
        if token_cipher.is_current(ciphertext):
            current += 1
            return ciphertext
        try:
            fresh = token_cipher.rotate(ciphertext)
        except SecretUnreadable:
            unreadable += 1
            return ciphertext
        rotated += 1
        return fresh

    # Compare-and-swap per row: a token refreshed meanwhile was written under the newest key
    # already, and overwriting it with the rotated old pair would lose the live chain.
    for portal_id, old in db.session.execute(
        select(Portal.id, Portal.application_token_encrypted).order_by(Portal.id)
    ).all():
        if old:
            db.session.execute(
                update(Portal)
                .where(Portal.id == portal_id, Portal.application_token_encrypted == old)
                .values(application_token_encrypted=rotate(old))
            )
            db.session.commit()
    rows = db.session.execute(
        select(
            UserToken.id, UserToken.access_token_encrypted, UserToken.refresh_token_encrypted
        ).order_by(UserToken.id)
    ).all()
    for token_id, old_access, old_refresh in rows:
        db.session.execute(
            update(UserToken)
            .where(
                UserToken.id == token_id,
                UserToken.access_token_encrypted == old_access,
                UserToken.refresh_token_encrypted == old_refresh,
            )
            .values(
                access_token_encrypted=rotate(old_access),
                refresh_token_encrypted=rotate(old_refresh),
            )
        )
        db.session.commit()
    click.echo(f"re-encrypted: {rotated}, already current: {current}, unreadable: {unreadable}")
    if unreadable:
        raise click.ClickException(
            f"{unreadable} stored values match no key in TOKEN_KEYS and were left as they are"
        )


@click.command("openapi")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
def openapi_command(output: str | None) -> None:
    """Print (or write) the API's OpenAPI document; docs/openapi.json is its committed copy."""
    from b24app.views.api import openapi_document

    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def init_cli(app: Flask) -> None:
    """Register the app's commands."""
    app.cli.add_command(tokens_cli)
    app.cli.add_command(openapi_command)
    from b24app.jobs.worker import jobs_cli

    app.cli.add_command(jobs_cli)
