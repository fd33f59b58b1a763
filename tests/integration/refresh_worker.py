"""Run in a separate process: hammer one user's token chain from several threads.

Lives in its own module so a spawned process can import it by name.
"""

from __future__ import annotations

import threading
from typing import Any

from b24app import create_app
from b24app.services.gateway import close_gateway, gateway
from b24app.services.tokens import token_source


def hammer(
    config: dict[str, Any], portal_id: int, user_id: int, threads: int, barrier: Any, out: Any
) -> None:
    """Build an app (own engine and pool), wait for the others, call ``profile`` per thread."""
    app = create_app(config)
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        """One caller: the client refreshes when the stored token has expired."""
        with app.app_context():
            source = token_source(portal_id, user_id)
            try:
                answer = gateway().rest.call(source, "profile").result
                outcome = f"ok:{answer['ID']}"
            except Exception as error:  # reported to the parent, which fails the test
                outcome = f"error:{error!r}"
        with lock:
            results.append(outcome)

    workers = [threading.Thread(target=call) for _ in range(threads)]
    barrier.wait(timeout=60)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    close_gateway(app)
    out.put(results)
