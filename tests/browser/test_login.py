import pytest

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_andrologist_logs_in_and_sees_the_home_page_of_their_site(page, andrologist):
    page.goto("/")
    assert "/accounts/login/" in page.url  # anonymous: sent to the login page
    login(page, "alice")
    who = page.inner_text("[data-testid=whoami]")
    assert "Andrologist" in who and "BEN" in who
    assert "University urology department" in page.inner_text("main")
