import pytest

from socialitsm.exceptions import ApplicationError
from socialitsm.http import CREDENTIALS_FOR_NEW_HOST
from socialitsm.services.channels import credentials_host_check

STORED = "https://rt.example.com/REST/2.0"


@pytest.mark.parametrize(
    ("new_url", "stored", "replaced"),
    [
        (None, True, False),  # base URL not changed
        ("https://rt.example.com:443/other", True, False),  # same host and port
        ("https://evil.example.net", False, False),  # nothing stored to leak
        ("https://evil.example.net", True, True),  # new credentials come with the change
    ],
)
def test_credentials_host_check_passes(new_url, stored, replaced):
    try:
        credentials_host_check(stored_url=STORED, new_url=new_url, stored=stored, replaced=replaced)
    except ApplicationError as exc:
        pytest.fail(f"refused a change that cannot leak the stored credentials: {exc.message}")


@pytest.mark.parametrize(
    "new_url", ["https://evil.example.net", "https://rt.example.com:8443", "http://rt.example.com"]
)
def test_credentials_host_check_refuses_another_host(new_url):
    with pytest.raises(ApplicationError) as caught:
        credentials_host_check(stored_url=STORED, new_url=new_url, stored=True, replaced=False)
    assert caught.value.message == CREDENTIALS_FOR_NEW_HOST
    assert caught.value.field == "credentials"
