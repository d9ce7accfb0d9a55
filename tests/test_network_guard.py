"""The suite reaches no host but the loopback services it uses, and resolves no name itself."""

from __future__ import annotations

import socket

import pytest
import requests

from socialitsm import http
from socialitsm.exceptions import PermanentError

from .conftest import PUBLIC_ADDRESS, NetworkBlocked


def test_a_connection_to_a_public_address_is_refused_before_it_is_made():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetworkBlocked, match=PUBLIC_ADDRESS):
        sock.connect((PUBLIC_ADDRESS, 443))
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("10.0.0.1", 80), timeout=1)


def test_requests_to_the_internet_fail():
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{PUBLIC_ADDRESS}/", timeout=1)


def test_names_other_than_localhost_do_not_resolve():
    with pytest.raises(socket.gaierror, match="public_dns"):
        socket.getaddrinfo("example.com", 443)
    assert {info[4][0] for info in socket.getaddrinfo("localhost", 80, socket.AF_INET)} == {"127.0.0.1"}


def test_loopback_stays_reachable():
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname(), timeout=1):
        conn, _ = server.accept()
        assert conn.getpeername()[0] == "127.0.0.1"
        conn.close()


def test_public_dns_lets_the_ssrf_guard_pass_example_hosts_and_still_refuse_loopback(public_dns, settings):
    assert settings.SOCIALITSM_ALLOW_PRIVATE_URLS is False
    http.check_url("https://mastodon.example/api/v1/statuses")
    with pytest.raises(PermanentError, match="non-public"):
        http.check_url("http://127.0.0.1:8080/")
