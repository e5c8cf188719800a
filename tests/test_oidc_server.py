"""The loopback OpenID Connect provider (tests/oidc_server.py) against Authlib's own client, the one
``st.login`` uses: what a sign-in gets, and what the provider refuses, so that a browser test that
signs in through it proves the flow and not a provider that accepts anything."""

from __future__ import annotations

import http.client
import json
import re
import urllib.request
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_server import CLIENT_ID, CLIENT_SECRET, OidcProvider

REDIRECT_URI = "http://127.0.0.1:8501/oauth2callback"  # any port of a registered loopback URI


@pytest.fixture(scope="module")
def provider():
    provider = OidcProvider().start()
    yield provider
    provider.stop()


def get_json(url: str, headers: dict | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
        return json.load(response)


def request(provider: OidcProvider, method: str, url: str, body: dict | None = None):
    """One request, redirects not followed: (status, Location header, body text)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    connection.request(method, f"{parts.path}?{parts.query}", urlencode(body or {}), headers)
    response = connection.getresponse()
    answer = response.status, response.getheader("Location"), response.read().decode()
    connection.close()
    return answer


def sign_in(provider: OidcProvider, client: OAuth2Client, user: str, **extra) -> tuple[str, dict]:
    """The authorize page, then ``user``'s button: returns the redirect URI called back and the
    parameters the client sent."""
    metadata = get_json(f"{provider.url}/.well-known/openid-configuration")
    url, _ = client.create_authorization_url(metadata["authorization_endpoint"], **extra)
    status, _, page = request(provider, "GET", url)
    assert status == 200 and f'value="{user}"' in page
    form = {name: unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', page)}
    status, location, _ = request(provider, "POST", f"{provider.url}/authorize", {**form, "user": user})
    assert status == 302 and location.startswith(REDIRECT_URI + "?")
    return location, form


def new_client(secret: str = CLIENT_SECRET) -> OAuth2Client:
    return OAuth2Client(
        CLIENT_ID,
        secret,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )


def test_a_code_is_redeemed_once_for_an_rs256_id_token_with_the_nonce(provider):
    client, verifier, nonce = new_client(), generate_token(48), generate_token(20)
    location, sent = sign_in(provider, client, "alice", code_verifier=verifier, nonce=nonce)
    assert sent["code_challenge_method"] == "S256" and parse_qs(urlsplit(location).query)["state"]
    token = client.fetch_token(
        f"{provider.url}/token", authorization_response=location, code_verifier=verifier
    )

    keys = KeySet.import_key_set(get_json(f"{provider.url}/jwks"))
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"values": [provider.url]}},
        {"nonce": nonce, "client_id": CLIENT_ID, "access_token": token["access_token"]},
    )
    claims.validate()  # what Authlib checks for st.login: issuer, audience, expiry, nonce, at_hash
    assert (claims["preferred_username"], claims["email"]) == ("alice", "alice@example.org")
    userinfo = get_json(f"{provider.url}/userinfo", {"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo["preferred_username"] == "alice"

    with pytest.raises(OAuthError, match="invalid_grant"):  # the same code a second time
        client.fetch_token(f"{provider.url}/token", authorization_response=location, code_verifier=verifier)


@pytest.mark.parametrize(
    ("secret", "verifier", "error"),
    [("wrong-secret", None, "invalid_client"), (CLIENT_SECRET, "another-verifier" * 3, "invalid_grant")],
)
def test_the_token_endpoint_refuses_a_wrong_client_secret_or_code_verifier(provider, secret, verifier, error):
    client, right_verifier = new_client(secret), generate_token(48)
    location, _ = sign_in(provider, client, "bob", code_verifier=right_verifier, nonce=generate_token(20))
    with pytest.raises(OAuthError, match=error):
        client.fetch_token(
            f"{provider.url}/token", authorization_response=location, code_verifier=verifier or right_verifier
        )
    assert provider.state.refusals[-1].startswith(f"POST /token: {error}")


def test_an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(provider):
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": "http://evil.example/oauth2callback",
        }
    )
    status, location, body = request(provider, "GET", f"{provider.url}/authorize?{query}")
    assert (status, location) == (400, None) and "unregistered redirect_uri" in body


def test_a_provider_signs_in_the_users_it_was_given_besides_the_test_users():
    claims = {"sub": "visitor-7", "name": "Visitor 7", "email": "visitor-7@example.org"}
    provider = OidcProvider(users={"visitor-7": claims}).start()
    try:
        client, verifier = new_client(), generate_token(48)
        location, _ = sign_in(provider, client, "visitor-7", code_verifier=verifier, nonce=generate_token(20))
        token = client.fetch_token(
            f"{provider.url}/token", authorization_response=location, code_verifier=verifier
        )
        userinfo = get_json(f"{provider.url}/userinfo", {"Authorization": f"Bearer {token['access_token']}"})
        assert (userinfo["preferred_username"], userinfo["email"]) == ("visitor-7", "visitor-7@example.org")
        assert provider.state.sign_ins == ["visitor-7"]
    finally:
        provider.stop()
