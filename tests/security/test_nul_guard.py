"""A NUL character in the address is a 400 with a message, never a database error (found by
tests/security/test_fuzz_forms.py: list filters read the query string without a form, and
PostgreSQL refuses a NUL in a query parameter)."""

import pytest


@pytest.mark.parametrize(
    "url",
    [
        "/monitoring/queries/?site=%00",
        "/patients/?q=BEN%00",
        "/monitoring/consent-audit/?problem=%00&format=csv",
        "/audit/history/patients.patientidentity%00/00000000-0000-0000-0000-000000000000/",
    ],
)
def test_a_nul_in_the_address_is_a_bad_request_not_a_server_error(client, admin_user, url):
    client.force_login(admin_user)
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
