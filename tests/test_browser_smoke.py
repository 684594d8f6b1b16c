import pytest

pytestmark = pytest.mark.browser


def test_signup_page_renders_in_chromium(live_url, page):
    page.goto(f"{live_url}/accounts/signup/")
    assert page.locator("input[name=email]").is_visible()
    # Vendored CSS is served (no CDN): the stylesheet loaded.
    assert page.evaluate("document.styleSheets.length") >= 2
