"""The access rule: loopback hosts, the Host-header guard and tokens."""

from __future__ import annotations

import pytest

from nascli.webui.security import Access, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("app.localhost", True), ("0.0.0.0", False), ("::", False),
     ("192.168.1.5", False), ("example.com", False), ("localhost.example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("header", "allowed"),
    [("127.0.0.1:8080", True), ("localhost", True), ("[::1]:8080", True), ("LOCALHOST:1", True),
     ("evil.example", False), ("evil.example:8080", False), ("127.0.0.1.evil.example", False),
     ("", False), (None, False)],
)  # fmt: skip
def test_host_header_on_loopback(header: str | None, allowed: bool):
    access = Access("127.0.0.1")
    assert access.token is None
    assert access.host_allowed(header) is allowed


def test_tokens_off_loopback():
    access = Access("0.0.0.0")
    assert access.host_allowed("evil.example")  # the token is the guard there
    assert access.token_ok(access.token)
    assert not access.token_ok(None) and not access.token_ok("") and not access.token_ok("x")
    assert access.from_request(None, f"Bearer {access.token}") == access.token
    assert access.from_request(f"a=1; nascli_webui={access.token}", None) == access.token
    assert access.from_request('bad"cookie', None) is None
    assert Access("0.0.0.0", token="given").token == "given"


def test_a_trial_log_swapped_for_a_fifo_or_link_never_blocks_the_api(tmp_path):
    import os
    import threading

    from nascli.webui.api import _tail

    fifo, link, real = tmp_path / "stdout", tmp_path / "stderr", tmp_path / "real"
    os.mkfifo(fifo)
    real.write_bytes(b"secret\n")
    link.symlink_to(real)
    got: list = []
    reader = threading.Thread(
        target=lambda: got.extend([_tail(fifo, 100), _tail(link, 100)]), daemon=True
    )
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert [g["text"] for g in got] == ["", ""] and all(g["missing"] for g in got)
