"""The only code that talks to a viewer's Code Dx (its REST API; anchors §5).

SWAMP drove this API through ``curl -ks``: no TLS verification, HTTP errors
not noticed, the key on a command line.  Here every request has a timeout,
certificates are verified (against the facility's CA bundle when one is
configured), an HTTP error is an exception, and the per-launch key travels
only in a header: it is never logged, and never part of an exception text.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

log = logging.getLogger(__name__)

#: Job states Code Dx reports for an analysis (``GET /api/jobs/{id}``).
JOB_DONE = "completed"
JOB_FAILED = frozenset({"failed", "cancelled"})


class CodeDxError(Exception):
    """A Code Dx call did not succeed."""


class CodeDxUnavailable(CodeDxError):
    """No answer, a timeout, or a server-side error: the same call may work later."""


class CodeDxRejected(CodeDxError):
    """Code Dx answered 4xx: this request, as it is, will not be accepted."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Analysis:
    analysis_id: int
    job_id: str


class CodeDxClient:
    """One viewer's Code Dx at ``base_url`` (context path included), with its key."""

    def __init__(self, base_url: str, apikey: str, auth: str = "system-key",
                 verify: bool | str = True, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = ({"Authorization": f"System-Key {apikey}"} if auth == "system-key"
                         else {"API-Key": apikey})
        self.verify = verify
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies from the daemon's environment for viewer traffic

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "CodeDxClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._session.request(method, url, headers=self._headers, verify=self.verify,
                                             timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise CodeDxUnavailable(f"{method} {path}: TLS verification failed: {_short(exc)}") from None
        except requests.RequestException as exc:
            raise CodeDxUnavailable(f"{method} {path}: {type(exc).__name__}: {_short(exc)}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise CodeDxUnavailable(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 300:
            raise CodeDxRejected(response.status_code,
                                 f"{method} {path}: HTTP {response.status_code} {_reason(response)}")
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            raise CodeDxUnavailable(f"{method} {path}: answer is not JSON") from None
        if isinstance(body, dict) and body.get("error"):
            raise CodeDxRejected(response.status_code, f"{method} {path}: {str(body['error'])[:200]}")
        return body

    # -- projects ------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        body = self._call("GET", "/api/projects")
        projects = body.get("projects") if isinstance(body, dict) else body
        if not isinstance(projects, list):
            raise CodeDxUnavailable("GET /api/projects: no project list in the answer")
        return [p for p in projects if isinstance(p, dict)]

    def find_project(self, name: str) -> int | None:
        for project in self.projects():
            if project.get("name") == name and isinstance(project.get("id"), int):
                return int(project["id"])
        return None

    def find_or_create_project(self, name: str) -> int:
        """The id of the project called ``name``, created if missing (create is not idempotent by name)."""
        found = self.find_project(name)
        if found is not None:
            return found
        created = self._call("PUT", "/api/projects", json={"name": name})
        if isinstance(created, dict) and isinstance(created.get("id"), int):
            return int(created["id"])
        found = self.find_project(name)
        if found is None:
            raise CodeDxUnavailable(f"project {name!r} was created but is not listed")
        return found

    # -- analyses ------------------------------------------------------------
    def analyses(self, project_id: int) -> list[dict[str, Any]]:
        body = self._call("GET", f"/api/projects/{int(project_id)}/analyses")
        items = body.get("analyses", body) if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise CodeDxUnavailable(f"GET analyses of project {project_id}: no list in the answer")
        return [a for a in items if isinstance(a, dict)]

    def upload(self, project_id: int, files: list[tuple[str, Path | BinaryIO]]) -> Analysis:
        """POST the files as one analysis, parts ``file1``..``fileN`` as SWAMP sent them.

        A file may be given open (the uploader opens callers' files confined to their roots).
        """
        handles = []
        try:
            parts = []
            for n, (name, path) in enumerate(files, 1):
                if isinstance(path, Path):
                    fh: BinaryIO = open(path, "rb")
                    handles.append(fh)
                else:
                    fh = path
                parts.append((f"file{n}", (name, fh, "application/octet-stream")))
            body = self._call("POST", f"/api/projects/{int(project_id)}/analysis", files=parts)
        finally:
            for fh in handles:
                fh.close()
        try:
            return Analysis(int(body["analysisId"]), str(body["jobId"]))
        except (KeyError, TypeError, ValueError):
            raise CodeDxUnavailable(f"POST analysis: unexpected answer {json.dumps(body)[:200]}") from None

    def name_analysis(self, project_id: int, analysis_id: int, name: str) -> None:
        self._call("PUT", f"/api/projects/{int(project_id)}/analyses/{int(analysis_id)}", json={"name": name})

    def job_status(self, job_id: str) -> str:
        body = self._call("GET", f"/api/jobs/{requests.utils.quote(job_id, safe='')}")
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            raise CodeDxUnavailable(f"job {job_id}: no status in the answer")
        return status.lower()


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])[:200]
    except ValueError:
        pass
    return response.reason or ""
