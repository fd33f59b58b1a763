"""One process of the refresh storm: ``python -m bench.lib_workers '<json settings>'``.

The process builds ``threads`` callers of one library (``b24pysdk`` or ``fast_bitrix24``)
against a token pair kept in a JSON file shared with the other processes, prints ``ready``,
waits for ``go`` on its standard input, then lets every thread make the same read at once
and prints one JSON line: ``{"calls": [{"ok": bool, "error": str | null}, ...]}``.

Each library is driven as its documentation shows, with only the portal's and the OAuth
server's base URLs pointed at the sandbox:

- ``b24pysdk``: each call loads the stored pair into a ``BitrixToken`` subclass that
  connects ``oauth_token_renewed_signal`` to a handler saving the renewed pair; the SDK
  refreshes the expired token itself before calling (and again on ``expired_token``).
- ``fast_bitrix24``: each call builds a ``Bitrix`` client on the portal's REST endpoint with
  a ``token_func`` that returns the stored access token while it is valid and otherwise
  refreshes with the stored refresh token, saves the new pair and returns its access token.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

# The read every caller makes: one page of deals. fast_bitrix24's get_all adds order[ID],
# which crm.deal.list takes and the sandbox's crm.item.list refuses (its field is ``id``).
READ_METHOD = "crm.deal.list"
READ_PARAMS: dict[str, Any] = {"select": ["ID", "TITLE"]}
# A stored access token this close to its expiry counts as expired (fast_bitrix24's caller).
EXPIRY_MARGIN_SECONDS = 1.0
HTTP_TIMEOUT = 30.0


class PairStore:
    """The token pair in a JSON file, written whole and swapped in by rename.

    Readers never see a half-written file; two writers racing leave the later one's pair.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        """Return the stored pair: access_token, refresh_token, expires (epoch seconds)."""
        pair: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return pair

    def save(self, access_token: str, refresh_token: str, expires: float) -> None:
        """Store a new pair, keeping the other fields (the portal's endpoint)."""
        pair = {
            **self.load(),
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires": expires,
        }
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".pair-")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(pair, file)
        os.replace(temporary, self.path)


def b24pysdk_caller(settings: dict[str, Any], store: PairStore) -> Callable[[], None]:
    """Return a function making the read through b24pysdk with the stored pair."""
    from b24pysdk import BitrixApp, BitrixToken, Config
    from b24pysdk.api.callers.call_method import _MethodCaller
    from b24pysdk.api.requesters.bitrix_oauth_requester import BitrixOAuthRequester
    from b24pysdk.events import OAuthTokenRenewedEvent

    # The SDK builds https://<domain>/rest and https://oauth.bitrix24.tech: point both at the
    # sandbox, which serves plain http on loopback.
    _MethodCaller._base_url = property(lambda self: f"http://{self._domain}/rest")  # type: ignore[method-assign,assignment]
    oauth = settings["oauth_url"]
    BitrixOAuthRequester._OAUTH_TOKEN_URL = f"{oauth}/oauth/token/"  # type: ignore[misc]
    BitrixOAuthRequester._APP_INFO_URL = f"{oauth}/rest/app.info/"  # type: ignore[misc]
    app = BitrixApp(client_id=settings["client_id"], client_secret=settings["client_secret"])

    class StoredToken(BitrixToken):
        """A token that saves every pair the SDK renews, as the SDK's signals section shows."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.oauth_token_renewed_signal.connect(self.save_renewed)

        def save_renewed(self, event: OAuthTokenRenewedEvent) -> None:
            token = event.renewed_oauth_token.oauth_token
            expires = token.expires.timestamp() if token.expires else time.time()
            store.save(token.access_token, token.refresh_token or "", expires)

    def call() -> None:
        pair = store.load()
        token = StoredToken(
            domain=pair["domain"],
            auth_token=pair["access_token"],
            refresh_token=pair["refresh_token"],
            expires=datetime.fromtimestamp(pair["expires"], tz=Config().tz),
            bitrix_app=app,
        )
        answer = token.call_method(READ_METHOD, READ_PARAMS)
        if not isinstance(answer["result"], list):
            raise RuntimeError(f"unexpected answer: {str(answer)[:200]}")

    return call


def fast_bitrix24_caller(settings: dict[str, Any], store: PairStore) -> Callable[[], None]:
    """Return a function making the read through fast_bitrix24 with the stored pair."""
    from fast_bitrix24 import Bitrix

    token_url = f"{settings['oauth_url']}/oauth/token/"

    async def token_func() -> str:
        """Return the stored access token, refreshing the stored pair once it expired."""
        pair = store.load()
        if pair["expires"] > time.time() + EXPIRY_MARGIN_SECONDS:
            return str(pair["access_token"])
        answer = httpx.get(
            token_url,
            params={
                "grant_type": "refresh_token",
                "client_id": settings["client_id"],
                "client_secret": settings["client_secret"],
                "refresh_token": pair["refresh_token"],
            },
            timeout=HTTP_TIMEOUT,
        ).json()
        if "access_token" not in answer:
            raise RuntimeError(f"refresh refused: {answer.get('error')}")
        store.save(
            answer["access_token"], answer["refresh_token"], time.time() + answer["expires_in"]
        )
        return str(answer["access_token"])

    def call() -> None:
        client = Bitrix(settings["client_endpoint"], token_func=token_func, verbose=False)
        items = client.get_all(READ_METHOD, READ_PARAMS)
        if not isinstance(items, list):
            raise RuntimeError(f"unexpected answer: {str(items)[:200]}")

    return call


CALLERS = {"b24pysdk": b24pysdk_caller, "fast_bitrix24": fast_bitrix24_caller}


def describe(error: BaseException) -> str:
    """Name a failure briefly: its class and the start of its message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:160]}"


def main(argv: list[str]) -> int:
    """Run one process of the storm (see the module's docstring)."""
    settings: dict[str, Any] = json.loads(argv[0])
    store = PairStore(Path(settings["store"]))
    call = CALLERS[settings["library"]](settings, store)
    threads = int(settings["threads"])
    go = threading.Event()
    results: list[dict[str, Any]] = [{"ok": False, "error": "not run"} for _ in range(threads)]

    def run(index: int) -> None:
        go.wait()
        try:
            call()
        except Exception as error:  # every failure is reported, none ends the process
            results[index] = {"ok": False, "error": describe(error)}
        else:
            results[index] = {"ok": True, "error": None}

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    go.set()
    for worker in workers:
        worker.join(timeout=HTTP_TIMEOUT * 2)
    print(json.dumps({"calls": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
