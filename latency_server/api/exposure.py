"""Who may reach this server: the loopback rule for tokenless servers and the names it answers to.

A server without a token lets anyone who reaches it make the device measure, so it serves loopback only unless
``LATENCY_SERVER_ALLOW_UNAUTHENTICATED`` says otherwise. :func:`exposure_problem` is that rule for the
configured bind address (the command line and :func:`latency_server.app.create_app` both apply it);
:func:`connection_exposed` applies it to the address a connection arrived on, which also covers
``uvicorn --factory --host ...``, where the settings do not know the bind address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["LOOPBACK_NAMES", "UnsafeExposure", "allowed_host_names", "connection_exposed", "exposure_problem",
           "ip_literals_allowed", "is_loopback", "needs_token"]

#: Host names every server answers to (any port); IPv6 literals are bracketed as in a Host header
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "localhost.", "[::1]"})
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})


class UnsafeExposure(RuntimeError):
    """A non-loopback bind address without a token (and without ``allow_unauthenticated``)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost`` or a loopback address)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def needs_token(settings: Any) -> bool:
    """Whether a non-loopback client must be refused: no token is configured and exposure is not allowed."""
    token = settings.token.get_secret_value() if settings.token is not None else ""
    return not token and not settings.allow_unauthenticated


def exposure_problem(settings: Any) -> str | None:
    """Why ``settings`` may not be served (a non-loopback bind without a token), or ``None``."""
    if not needs_token(settings) or is_loopback(settings.host):
        return None
    return (f"refusing to serve {settings.host} without a token: anyone who reaches it could make this device "
            "measure. Set LATENCY_SERVER_TOKEN (clients send 'Authorization: Bearer <token>'), bind 127.0.0.1, or "
            "pass --allow-unauthenticated (env LATENCY_SERVER_ALLOW_UNAUTHENTICATED=1) on a trusted network.")


def connection_exposed(server: Any) -> bool:
    """Whether a connection arrived on a non-loopback IP address (ASGI ``scope["server"]``; a Unix socket or a
    test client's name is not an IP address and counts as local)."""
    if not server:
        return False
    try:
        address = ipaddress.ip_address(str(server[0]).strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # 127.0.0.1 on a dual-stack socket: ::ffff:127.0.0.1
    return not (mapped or address).is_loopback


def ip_literals_allowed(settings: Any, host: str) -> bool:
    """Whether ``host`` is an IP address a server bound beyond loopback answers to: any IP is, as DNS rebinding
    always sends a name (a page that targets an IP address directly is cross-origin, and no CORS header lets it
    read the answer)."""
    if is_loopback(settings.host):
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def allowed_host_names(settings: Any) -> frozenset[str] | None:
    """The lower-case Host names this server answers to, or ``None`` for any (``LATENCY_SERVER_ALLOWED_HOSTS=*``):
    the loopback names, the bind address unless it is a wildcard, and the configured names."""
    names = {name.strip().lower() for name in settings.allowed_hosts.split(",") if name.strip()}
    if "*" in names:
        return None
    bind = settings.host.strip().lower()
    if bind not in _WILDCARD_BINDS:
        names.add(f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind)
    return frozenset(names | LOOPBACK_NAMES)
