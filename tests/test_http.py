from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from socialitsm import http
from socialitsm.exceptions import PermanentError, TransientError

URL = "https://api.example.com/v1/thing"


@pytest.fixture
def public_dns(monkeypatch):
    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/x",
        "http://10.0.0.5/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://localhost/x",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "/relative",
    ],
)
def test_private_and_odd_urls_are_refused(url):
    with pytest.raises(PermanentError, match="refusing URL"):
        http.check_url(url)


def test_private_urls_allowed_when_configured(settings):
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True
    http.check_url("http://127.0.0.1:8480/REST/2.0/")


@responses.activate
def test_success_returns_response(public_dns):
    responses.get(URL, json={"ok": True})
    assert http.request("GET", URL).json() == {"ok": True}


@pytest.mark.parametrize(
    ("status", "error", "fragment"),
    [
        (401, PermanentError, "authentication refused"),
        (403, PermanentError, "authentication refused"),
        (404, PermanentError, "HTTP 404"),
        (422, PermanentError, "HTTP 422"),
        (429, TransientError, "HTTP 429"),
        (500, TransientError, "HTTP 500"),
        (503, TransientError, "HTTP 503"),
    ],
)
@responses.activate
def test_status_codes_map_to_errors(public_dns, status, error, fragment):
    responses.get(URL, status=status, body="nope", headers={"X-RateLimit-Remaining": "0"})
    with pytest.raises(error, match=fragment) as info:
        http.request("GET", URL)
    assert type(info.value) is error
    assert info.value.status == status
    # The answer travels with the error: connectors read its rate-limit headers and body.
    assert info.value.response is not None
    assert (info.value.response.status_code, info.value.response.text) == (status, "nope")
    assert info.value.response.headers["X-RateLimit-Remaining"] == "0"


@responses.activate
def test_retry_after_seconds_sets_retry_at(public_dns):
    responses.get(URL, status=429, headers={"Retry-After": "120"})
    with pytest.raises(TransientError) as info:
        http.request("GET", URL)
    assert timedelta(seconds=118) < info.value.retry_at - timezone.now() <= timedelta(seconds=120)


@responses.activate
def test_retry_after_http_date(public_dns):
    responses.get(URL, status=503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})
    with pytest.raises(TransientError) as info:
        http.request("GET", URL)
    assert info.value.retry_at.isoformat() == "2026-10-21T07:28:00+00:00"


@pytest.mark.parametrize(
    ("exc", "error"),
    [(requests.ConnectTimeout("slow"), TransientError), (requests.ConnectionError("reset"), TransientError)],
)
@responses.activate
def test_network_failures_are_transient(public_dns, exc, error):
    responses.get(URL, body=exc)
    with pytest.raises(error) as info:
        http.request("GET", URL)
    assert info.value.response is None


@responses.activate
def test_redirects_are_not_followed(public_dns):
    responses.get(URL, status=302, headers={"Location": "http://169.254.169.254/"})
    assert http.request("GET", URL).status_code == 302
    assert len(responses.calls) == 1


HEADER_REFUSED = (
    "bad request to {host}: a header value (usually a token or password from the credentials) has a line break, "
    "leading spaces or characters HTTP headers cannot carry"
)


@responses.activate
@pytest.mark.parametrize("token", ["tok-s3cret\n", "tok-s3cret\r\nX-Injected: 1"])
def test_a_bad_header_value_is_refused_without_quoting_it(public_dns, token):
    # requests' own message quotes the value: stored as last_error it would show the token.
    with pytest.raises(PermanentError) as caught:
        http.request("GET", URL, headers={"Authorization": f"Bearer {token}"})
    assert caught.value.message == HEADER_REFUSED.format(host="api.example.com")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(responses.calls) == 0


def test_a_header_value_http_cannot_encode_is_a_permanent_error(settings):
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True  # a closed port on 127.0.0.1
    # Refused while the request is written, before any connection: the port need not listen.
    with pytest.raises(PermanentError) as caught:
        http.request("GET", "http://127.0.0.1:9/x", headers={"Authorization": "Bearer tok-s3cret-€"})
    assert caught.value.message == HEADER_REFUSED.format(host="127.0.0.1:9")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:a00:5::1", "::7f00:1", "::ffff:10.0.0.5"],
    ids=["nat64-loopback", "nat64-metadata", "6to4-loopback", "6to4-private", "ipv4-compatible", "ipv4-mapped"],
)
def test_ipv6_addresses_carrying_a_private_ipv4_address_are_refused(monkeypatch, address):
    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(PermanentError) as caught:
        http.check_url("https://sneaky.example.com/x")
    assert caught.value.message == (
        "refusing URL 'https://sneaky.example.com/x': sneaky.example.com resolves to a non-public address"
    )


@pytest.mark.parametrize("address", ["64:ff9b::5db8:d70e", "2002:5db8:d70e::1", "2606:4700::1111"])
def test_ipv6_addresses_of_public_hosts_pass(monkeypatch, address):
    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    http.check_url("https://public.example.com/x")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"X-RateLimit-Remaining": "299"}, 299), ({"X-RateLimit-Remaining": "1.5"}, None), ({}, None)],
)
def test_header_int_reads_whole_numbers_only(headers, expected):
    response = requests.Response()
    response.headers.update(headers)
    assert http.header_int(response, "x-ratelimit-remaining") == expected
