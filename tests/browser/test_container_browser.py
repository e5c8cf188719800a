"""The Dockerfile's CMD in a real browser: sign-in configured only by ZOO_AUTH_* environment variables
(as a host's --env-file or a Space's secrets give them) signs a person in through st.login against
the loopback OpenID Connect provider of tests/oidc_server.py."""

import pytest
from oidc_server import CLIENT_ID, CLIENT_SECRET
from playwright.sync_api import expect
from test_container import as_the_image_runs, free_port, image_server

pytestmark = pytest.mark.browser
PAGE_LOAD_TIMEOUT_MS = 90_000


def test_auth_from_the_environment_signs_a_person_in_to_the_containers_server(
    oidc_provider, browser_page, tmp_path, zoo_home
):
    port = free_port()
    environment = as_the_image_runs(
        tmp_path,
        zoo_home,
        port,
        ZOO_AUTH_CLIENT_ID=CLIENT_ID,
        ZOO_AUTH_CLIENT_SECRET=CLIENT_SECRET,
        ZOO_AUTH_REDIRECT_URI=f"http://127.0.0.1:{port}/oauth2callback",
        ZOO_AUTH_SERVER_METADATA_URL=f"{oidc_provider.url}/.well-known/openid-configuration",
        ZOO_ADMINS="teacher",
    )
    with image_server(environment, tmp_path / "server.log"):
        page = browser_page
        page.goto(f"http://127.0.0.1:{port}/")
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_role("button", name="Sign in").click(timeout=PAGE_LOAD_TIMEOUT_MS)
        page.get_by_role("button", name="teacher", exact=True).click()  # the provider's page: who signs in
        expect(sidebar.get_by_text("Signed in as teacher (admin).")).to_be_visible(
            timeout=PAGE_LOAD_TIMEOUT_MS
        )
        assert oidc_provider.state.refusals == []
    log = (tmp_path / "server.log").read_text()
    assert "sign-in: [auth] from the environment written to" in log
    assert CLIENT_SECRET not in log
