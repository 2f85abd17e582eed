"""Who may see the dashboard and ``/metrics``: the API's own credential, or a cookie made from it.

The rule is the API's: with no ``token_file`` (loopback only, by the
configuration's own check) anyone who can connect may look; with one, a
request needs ``Authorization: Bearer <token>`` (Prometheus sends it from
``bearer_token_file``), a connection on the Unix socket, or the session
cookie the login form sets after the operator typed the token.

The cookie is not the token: it is an expiry time and an HMAC of it keyed
with the token, so it is checked without any server-side session table,
survives a daemon restart, stops working when the token changes, and a
stolen cookie cannot be turned into the token.  It is ``HttpOnly`` (no
script can read it), ``SameSite=Strict`` (no other site's page can send it)
and ``Secure`` when the daemon speaks TLS.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qs

COOKIE = "swampd_session"
#: Seconds a login lasts.
SESSION_SECONDS = 12 * 3600


def _mac(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"swampd-dashboard-session:{expires}".encode(), hashlib.sha256).hexdigest()


def make_cookie(token: str, secure: bool, now: float | None = None) -> str:
    """The ``Set-Cookie`` value after a good login."""
    expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
    flags = "; Secure" if secure else ""
    return (f"{COOKIE}={expires}.{_mac(token, expires)}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly;"
            f" SameSite=Strict{flags}")


def clear_cookie(secure: bool) -> str:
    return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{'; Secure' if secure else ''}"


def cookie_ok(token: str, header: str, now: float | None = None) -> bool:
    """True when the request's ``Cookie`` header carries a valid, unexpired session of ``token``."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name != COOKIE:
            continue
        expires, _, mac = value.partition(".")
        if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
            continue
        if hmac.compare_digest(mac.encode(), _mac(token, int(expires)).encode()):
            return True
    return False


def login_token(body: bytes) -> str:
    """The token typed into the login form (``application/x-www-form-urlencoded``)."""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        return ""
    return (fields.get("token") or [""])[0].strip()


def token_ok(token: str, given: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())
