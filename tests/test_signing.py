import hashlib
import hmac

import pytest

from socialitsm import signing
from socialitsm.connectors import webhook as webhook_connector
from socialitsm.itsm import base as itsm_base

BODY = b'{"text": "VPN down"}'


def test_sign_is_hex_hmac_sha256_of_the_body():
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert signing.sign("s3cret", BODY) == f"sha256={expected}"
    assert signing.sign("other", BODY) != signing.sign("s3cret", BODY)


@pytest.mark.parametrize(
    ("secret", "header", "valid"),
    [
        ("s3cret", signing.sign("s3cret", BODY), True),
        ("s3cret", f"  {signing.sign('s3cret', BODY)}\n", True),
        ("s3cret", signing.sign("other", BODY), False),
        ("s3cret", signing.sign("s3cret", BODY + b" "), False),
        ("s3cret", "sha256=é", False),
        ("s3cret", "", False),
        ("s3cret", None, False),
        ("", signing.sign("", BODY), False),
    ],
)
def test_signature_valid(secret, header, valid):
    assert signing.signature_valid(secret, BODY, header) is valid


def test_webhook_channels_and_itsm_suites_share_the_scheme():
    assert webhook_connector.sign is signing.sign
    assert webhook_connector.signature_valid is signing.signature_valid
    assert itsm_base.sign is signing.sign
    assert webhook_connector.SIGNATURE_HEADER == itsm_base.SIGNATURE_HEADER == signing.SIGNATURE_HEADER
