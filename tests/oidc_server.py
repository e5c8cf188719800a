"""An OpenID Connect provider on 127.0.0.1 for the tests (stdlib HTTP server; ID tokens signed RS256
with ``joserfc``, which Authlib brings).

It implements what Streamlit's ``st.login`` (Authlib's Starlette client) uses, the authorization code
flow: the discovery document, an authorize page with one button per test user (the test clicks
the person who signs in), the token endpoint (client secret by HTTP Basic or in the form, the
redirect URI of the authorize request, each code once, PKCE S256 when the client sent a challenge,
the nonce put into the ID token), JWKS, userinfo and RP-initiated logout.

Users: ``alice``, ``bob`` and ``teacher`` (``USERS``), and any more given as ``OidcProvider(users=...)``
(the load benchmark signs in ``visitor-N``s); their ``preferred_username`` is the name Zoo Studio
records as owner. Redirect URIs are registered without a port: as RFC 8252 says for
loopback clients, ``http://127.0.0.1/oauth2callback`` matches that path on any port of that host.
Every request the provider refused is kept in ``state.refusals``, so a test can say why a
sign-in did not happen instead of only seeing that it did not.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from loopback import LoopbackServer

CLIENT_ID = "zoo-studio-tests"
CLIENT_SECRET = "zoo-studio-tests-client-secret"
USERS = {
    "alice": {"sub": "user-1", "name": "Alice", "email": "alice@example.org"},
    "bob": {"sub": "user-2", "name": "Bob", "email": "bob@example.org"},
    "teacher": {"sub": "user-3", "name": "The Teacher", "email": "teacher@example.org"},
}
TOKEN_SECONDS = 3600
CODE_SECONDS = 60


class OidcError(Exception):
    """A refused request: HTTP status, OAuth error code and description."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass
class Grant:
    """What an authorization code stands for, until the client redeems it (once)."""

    user: str
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    scope: str
    expires_at: float


@dataclass
class OidcState:
    """Codes, access tokens and the log, guarded by one lock."""

    redirect_uris: set[str]
    lock: threading.RLock = field(default_factory=threading.RLock)
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    sign_ins: list[str] = field(default_factory=list)  # users whose code was redeemed, in order
    refusals: list[str] = field(default_factory=list)  # "METHOD /path: error: description"


class OidcProvider(LoopbackServer):
    """The loopback provider: ``start()``, ``url``, ``auth_secrets(...)``, ``stop()``; ``state`` for
    assertions."""

    def __init__(
        self,
        redirect_uris: tuple[str, ...] = ("http://127.0.0.1/oauth2callback",),
        users: dict[str, dict] | None = None,
    ) -> None:
        """``users``: user name -> claims (``sub``, ``name``, ``email``), signed in besides ``USERS``."""
        self.state = OidcState(redirect_uris=set(redirect_uris))
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig"})
        bound = {"state": self.state, "key": self.key, "users": {**USERS, **(users or {})}}
        handler = type("BoundOidcHandler", (OidcHandler,), bound)
        super().__init__(handler, "loopback-oidc")
        handler.issuer = self.url

    def auth_secrets(self, redirect_uri: str, cookie_secret: str | None = None) -> str:
        """The ``[auth]`` section of a Streamlit ``secrets.toml`` that signs in with this provider.

        ``redirect_uri`` may hold ``{port}``, which Streamlit replaces with its own port."""
        values = {
            "redirect_uri": redirect_uri,
            "cookie_secret": cookie_secret or secrets.token_hex(32),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "server_metadata_url": f"{self.url}/.well-known/openid-configuration",
        }
        return "[auth]\n" + "".join(f"{name} = {json.dumps(value)}\n" for name, value in values.items())


def registered(redirect_uri: str, redirect_uris: set[str]) -> bool:
    """Whether ``redirect_uri`` is registered; on a loopback host any port matches (RFC 8252, 7.3)."""
    if redirect_uri in redirect_uris:
        return True
    parts = urlsplit(redirect_uri)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.query or parts.fragment:
        return False
    return f"{parts.scheme}://{parts.hostname}{parts.path}" in redirect_uris


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """An ID token's ``at_hash`` for ``token``: the left half of its SHA-256, base64url (RS256)."""
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class OidcHandler(BaseHTTPRequestHandler):
    """Routes one request; the class attributes ``state``, ``key``, ``users`` and ``issuer`` are bound
    per server."""

    protocol_version = "HTTP/1.1"
    state: OidcState
    key: RSAKey
    users: dict[str, dict]
    issuer: str

    def log_message(self, format, *args):
        """Quiet: ``state.refusals`` and ``state.sign_ins`` are the log tests use."""

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = {name: values[0] for name, values in parse_qs(url.query or body).items()}
        routes = {
            ("GET", "/.well-known/openid-configuration"): self.discovery,
            ("GET", "/authorize"): self.authorize_page,
            ("POST", "/authorize"): self.authorize,
            ("POST", "/token"): self.token,
            ("GET", "/userinfo"): self.userinfo,
            ("GET", "/jwks"): self.jwks,
            ("GET", "/logout"): self.logout,
        }
        try:
            route = routes.get((method, url.path))
            if route is None:
                raise OidcError(404, "not_found", f"no route for {method} {url.path}")
            with self.state.lock:
                route(params)
        except OidcError as error:
            with self.state.lock:
                self.state.refusals.append(f"{method} {url.path}: {error.error}: {error.description}")
            self.send_json({"error": error.error, "error_description": error.description}, error.status)

    # ---- answers -------------------------------------------------------------------------

    def send_body(self, data: bytes, content_type: str, status: int = 200, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, data: dict, status: int = 200, headers: dict | None = None) -> None:
        self.send_body(json.dumps(data).encode(), "application/json", status, headers)

    def redirect(self, location: str) -> None:
        self.send_body(b"", "text/plain", 302, {"Location": location})

    # ---- endpoints -----------------------------------------------------------------------

    def discovery(self, params: dict) -> None:
        self.send_json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "end_session_endpoint": f"{self.issuer}/logout",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "name", "preferred_username", "email", "email_verified"],
            }
        )

    def check_authorize_request(self, params: dict) -> None:
        """Refuse (with a page, never a redirect) what a provider must not redirect back for."""
        if params.get("client_id") != CLIENT_ID:
            raise OidcError(400, "invalid_request", f"unknown client_id {params.get('client_id')!r}")
        if not registered(params.get("redirect_uri", ""), self.state.redirect_uris):
            raise OidcError(
                400, "invalid_request", f"unregistered redirect_uri {params.get('redirect_uri')!r}"
            )
        if params.get("response_type") != "code":
            raise OidcError(400, "unsupported_response_type", "only the authorization code flow")
        if "openid" not in params.get("scope", "").split():
            raise OidcError(400, "invalid_scope", "an OpenID Connect request asks for the openid scope")
        if "code_challenge" in params and params.get("code_challenge_method") != "S256":
            raise OidcError(400, "invalid_request", "code_challenge_method must be S256")

    def authorize_page(self, params: dict) -> None:
        """Who signs in: a form with the request's parameters and one button per user."""
        self.check_authorize_request(params)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
        )
        buttons = "".join(
            f'<button type="submit" name="user" value="{name}">{name}</button>' for name in self.users
        )
        page = (
            '<!doctype html><title>Loopback sign-in</title><link rel="icon" href="data:,">'
            "<h1>Sign in to Zoo Studio as</h1>"
            f'<form method="post" action="/authorize">{hidden}{buttons}</form>'
        )
        self.send_body(page.encode(), "text/html; charset=utf-8")

    def authorize(self, params: dict) -> None:
        """The chosen user signs in: a one-time code goes back to the client's redirect URI."""
        self.check_authorize_request(params)
        user = params.get("user")
        if user not in self.users:
            raise OidcError(400, "access_denied", f"unknown user {user!r}")
        code = secrets.token_urlsafe(24)
        self.state.grants[code] = Grant(
            user=user,
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            scope=params["scope"],
            expires_at=time.time() + CODE_SECONDS,
        )
        answer = {"code": code, "state": params["state"]} if "state" in params else {"code": code}
        self.redirect(f"{params['redirect_uri']}?{urlencode(answer)}")

    def client_credentials(self, params: dict) -> tuple[str | None, str | None]:
        """The client's id and secret: HTTP Basic (Authlib's default) or in the form."""
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            return client_id, client_secret
        return params.get("client_id"), params.get("client_secret")

    def token(self, params: dict) -> None:
        """An authorization code for an ID token and an access token."""
        client_id, client_secret = self.client_credentials(params)
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            raise OidcError(401, "invalid_client", "wrong client id or secret")
        if params.get("grant_type") != "authorization_code":
            raise OidcError(400, "unsupported_grant_type", "only authorization_code")
        grant = self.state.grants.pop(params.get("code", ""), None)  # a code is redeemed once
        if grant is None or grant.expires_at < time.time():
            raise OidcError(400, "invalid_grant", "unknown, used or expired code")
        if params.get("redirect_uri") != grant.redirect_uri:
            raise OidcError(400, "invalid_grant", "redirect_uri differs from the authorize request's")
        if grant.code_challenge is not None and s256(params.get("code_verifier", "")) != grant.code_challenge:
            raise OidcError(400, "invalid_grant", "PKCE code_verifier does not match the code_challenge")
        access_token = secrets.token_urlsafe(32)
        self.state.access_tokens[access_token] = grant.user
        self.state.sign_ins.append(grant.user)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "auth_time": now,
            "at_hash": token_hash(access_token),
            **({"nonce": grant.nonce} if grant.nonce else {}),
            **self.claims_of(grant.user),
        }
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)
        self.send_json(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "scope": grant.scope,
                "id_token": id_token,
            }
        )

    def claims_of(self, user: str) -> dict:
        return {"preferred_username": user, "email_verified": True, **self.users[user]}

    def userinfo(self, params: dict) -> None:
        authorization = self.headers.get("Authorization", "")
        user = self.state.access_tokens.get(authorization.removeprefix("Bearer "))
        if user is None:
            raise OidcError(401, "invalid_token", "unknown access token")
        self.send_json(self.claims_of(user))

    def jwks(self, params: dict) -> None:
        self.send_json({"keys": [{**self.key.as_dict(private=False), "alg": "RS256"}]})

    def logout(self, params: dict) -> None:
        """RP-initiated logout: back to the client's registered URI, or a page."""
        back = params.get("post_logout_redirect_uri")
        if back and registered(back, self.state.redirect_uris):
            self.redirect(back)
        else:
            self.send_body(b"<!doctype html><title>Signed out</title>Signed out.", "text/html")
