"""OAuth 1.0a (HMAC-SHA1) request signing for X's user-context endpoints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote


def _pct(value: str) -> str:
    return quote(value, safe="~")


def oauth1_header(
    method: str,
    url: str,
    params: Mapping[str, str],
    credentials: Mapping[str, str],
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> str:
    """The Authorization header of an HMAC-SHA1 signed OAuth 1.0a request. `params` are the
    query string and form fields (a JSON body is not signed)."""
    oauth = {
        "oauth_consumer_key": credentials["consumer_key"],
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "oauth_token": credentials["access_token"],
        "oauth_version": "1.0",
    }
    pairs = sorted((_pct(k), _pct(str(v))) for k, v in [*params.items(), *oauth.items()])
    base = "&".join((method.upper(), _pct(url), _pct("&".join(f"{k}={v}" for k, v in pairs))))
    key = f"{_pct(credentials['consumer_secret'])}&{_pct(credentials['access_token_secret'])}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    oauth["oauth_signature"] = base64.b64encode(digest).decode()
    return "OAuth " + ", ".join(f'{_pct(k)}="{_pct(v)}"' for k, v in sorted(oauth.items()))


USER_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
