"""Sandbox options, shared by the command line, tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox process."""

    host: str = "127.0.0.1"
    port: int = 5001
    app_url: str = "http://127.0.0.1:5000"
    client_id: str = "local.sandbox0000000.00000001"
    client_secret: str = "sandbox-client-secret"
    seed: int = 1
    orders: int = 120
    deals: int = 80
    invoices: int = 40
    owner_types: tuple[int, ...] = (2, 31)
    rps: float = 2.0
    burst: int = 50
    portals: int = 1
    access_ttl: int = 3600
    state_file: str | None = None
    scope: str = "crm,sale,placement,user_brief"
    extra: dict[str, str] = field(default_factory=dict)

    def portal_port(self, index: int) -> int:
        """Return the port of portal number ``index`` (0-based): one port per portal."""
        return self.port + index
