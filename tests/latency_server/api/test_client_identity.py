"""Who a request's client is, for the queue's turns and per-client limits: its token's hash, else its address."""

from __future__ import annotations

from pydantic import SecretStr

from latency_server.api.client_identity import client_of
from latency_server.config import Settings


def _scope(host: str, token: str | None = None) -> dict:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return {"type": "http", "client": (host, 5000), "headers": headers}


def test_clients_are_addresses_without_a_token_and_token_hashes_with_one() -> None:
    open_server = Settings(token=None)
    assert client_of(_scope("10.0.0.1"), open_server) == "addr:10.0.0.1"
    assert client_of(_scope("10.0.0.1"), open_server) != client_of(_scope("10.0.0.2"), open_server)
    guarded = Settings(token=SecretStr("secret"))
    one = client_of(_scope("10.0.0.1", "secret"), guarded)
    assert one == client_of(_scope("10.0.0.2", "secret"), guarded)  # one token, one client, wherever it calls from
    assert one.startswith("token:") and "secret" not in one
    assert client_of(_scope("10.0.0.1", "other"), guarded) != one
