"""SWAMP's web server, told that a run finished: the "notify" POST (reference swamp-db-deploy.md §1.8).

SWAMP's PostAssessment ran ``curl --silent --insecure -H 'Accept:
application/json' --header "Content-Length:0" -X POST
<swamp_api_web_server>/execution_records/<uuid>/notify`` once and ignored
what happened; the web server then mails the user.  Here the same request
is made with TLS verified (against ``[webserver] ca_bundle`` when set), a
timeout, no redirect followed and no proxy from the environment, and the
answer decides what the caller does next:

* 2xx: done.
* ``WebServerUnavailable``: no answer, a timeout, a TLS failure, a 5xx (or
  408/429): the same POST may work later; the daemon's outbox retries it.
* ``WebServerRefused``: any other answer (4xx, 3xx): this request will not
  be accepted as it is; retrying would only repeat it.
"""
from __future__ import annotations

import functools
from typing import Callable

import requests

from swampd.config import WebServerConfig
from swampd.identifiers import is_identifier

ACCEPT = "application/json"


class WebServerError(Exception):
    """The notification did not go through."""


class WebServerUnavailable(WebServerError):
    """No answer, or an answer that says "later"; try again."""


class WebServerRefused(WebServerError):
    """The web server answered, and the answer was no; final."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def notify_url(web_base_url: str, execrunid: str) -> str:
    if not is_identifier(execrunid):
        raise ValueError(f"{execrunid[:60]!r} is not an execution record uuid")
    return f"{web_base_url.rstrip('/')}/execution_records/{execrunid}/notify"


def notify_complete(web_base_url: str, execrunid: str, verify: bool | str = True, timeout: float = 30.0) -> None:
    """POST ``<web_base_url>/execution_records/<execrunid>/notify`` (empty body).

    ``verify``: True (the system's CAs), a CA bundle path, or False (no check; an
    operator's explicit choice).
    """
    url = notify_url(web_base_url, execrunid)
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.post(url, data=b"", headers={"Accept": ACCEPT, "Content-Length": "0"},
                                    verify=verify, timeout=timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise WebServerUnavailable(f"POST {url}: TLS verification failed: {_short(exc)}") from None
        except requests.RequestException as exc:
            raise WebServerUnavailable(f"POST {url}: {type(exc).__name__}: {_short(exc)}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"POST {url}: HTTP {status} {response.reason or ''}".rstrip()
    if status >= 500 or status in (408, 429):
        raise WebServerUnavailable(reason)
    if 300 <= status < 400:
        reason += f" (redirect to {response.headers.get('Location', '?')[:200]}: set [webserver] base_url to it)"
    raise WebServerRefused(status, reason)


def notify_with(config: WebServerConfig, execrunid: str) -> None:
    """``notify_complete`` with the ``[webserver]`` settings."""
    notify_complete(config.base_url, execrunid, config.verify, config.timeout)


def notifier(config: WebServerConfig) -> Callable[[str], None]:
    """``notify(execrunid)`` bound to the ``[webserver]`` settings (what the daemon's effect calls)."""
    return functools.partial(notify_with, config)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
