"""A Code Dx double: the slice of Code Dx's REST API that swampd uses (anchors §5).

Run as a viewer command (the ``process`` platform starts it like a viewer
machine) or in-process from a test.  It is strict where Code Dx is strict:
a missing key is 401, a wrong key 403, a body that is not well-formed
``multipart/form-data`` with ``fileN`` file parts is 400, an unknown project
404.  Everything it accepts or refuses is appended to a JSON-lines record
file, which is what tests assert on.  Failures can be injected: the first N
analysis POSTs answer 503, jobs stay "running" for N polls, jobs can end
"failed".

    python codedx_double.py --port P [--context proxy-…] (--key K | --run-params FILE)
        [--auth system-key|api-key] [--record FILE] [--fail-uploads N] [--job-polls N]
        [--job-result completed|failed] [--tls-cert PEM --tls-key PEM]
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import shlex
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PART_NAME_RE = re.compile(r"file\d+")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CodeDx:
    """The double's state: projects, analyses, jobs, and what was received."""

    def __init__(self, key: str, auth: str = "system-key", record: str = "", fail_uploads: int = 0,
                 job_polls: int = 0, job_result: str = "completed") -> None:
        self.key = key
        self.auth = auth
        self.record_path = record
        self.fail_uploads = fail_uploads
        self.job_polls = job_polls
        self.job_result = job_result
        self.lock = threading.Lock()
        self.projects: dict[int, dict[str, Any]] = {}
        self.analyses: dict[int, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []

    def record(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.received.append(event)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(event) + "\n")

    def check_key(self, headers: Any) -> None:
        if self.auth == "system-key":
            value = headers.get("Authorization", "")
            prefix = "System-Key "
            if not value.startswith(prefix):
                raise Refused(401, "missing System-Key authorization")
            given = value[len(prefix):]
        else:
            given = headers.get("API-Key", "")
            if not given:
                raise Refused(401, "missing API-Key header")
        if not hmac.compare_digest(given.encode(), self.key.encode()):
            raise Refused(403, "wrong key")

    # -- API -------------------------------------------------------------
    def list_projects(self) -> dict[str, Any]:
        return {"projects": [dict(p) for p in self.projects.values()]}

    def create_project(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise Refused(400, "a project needs a name")
        with self.lock:
            pid = len(self.projects) + 1
            self.projects[pid] = {"id": pid, "name": body["name"]}
        self.record({"event": "project", "id": pid, "name": body["name"]})
        return dict(self.projects[pid])

    def project(self, pid: int) -> dict[str, Any]:
        if pid not in self.projects:
            raise Refused(404, f"no project {pid}")
        return self.projects[pid]

    def upload(self, pid: int, content_type: str, body: bytes) -> dict[str, Any]:
        self.project(pid)
        parts = parse_multipart(content_type, body)
        with self.lock:
            if self.fail_uploads > 0:
                self.fail_uploads -= 1
                injected = True
            else:
                injected = False
        if injected:
            self.record({"event": "upload_failed_injected", "project": pid})
            raise Refused(503, "injected failure")
        with self.lock:
            aid = len(self.analyses) + 1
            job = f"job-{aid}"
            self.analyses[aid] = {"id": aid, "projectId": pid, "name": None, "state": "queued"}
            self.jobs[job] = {"analysis": aid, "polls": 0}
        self.record({"event": "analysis", "project": pid, "project_name": self.projects[pid]["name"],
                     "analysis": aid, "job": job, "files": parts})
        return {"analysisId": aid, "jobId": job}

    def list_analyses(self, pid: int) -> list[dict[str, Any]]:
        self.project(pid)
        return [dict(a) for a in self.analyses.values() if a["projectId"] == pid]

    def name_analysis(self, pid: int, aid: int, body: Any) -> dict[str, Any]:
        self.project(pid)
        analysis = self.analyses.get(aid)
        if analysis is None or analysis["projectId"] != pid:
            raise Refused(404, f"no analysis {aid}")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise Refused(400, "name must be a string")
        analysis["name"] = body["name"]
        self.record({"event": "named", "analysis": aid, "name": body["name"]})
        return dict(analysis)

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise Refused(404, f"no job {job_id}")
        with self.lock:
            job["polls"] += 1
            if job["polls"] <= self.job_polls:
                return {"status": "running"}
        status = self.job_result
        self.analyses[job["analysis"]]["state"] = "complete" if status == "completed" else status
        return {"status": status}


def parse_multipart(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """Strictly parse multipart/form-data with ``fileN`` file parts; anything off is 400."""
    match = re.fullmatch(r'multipart/form-data;\s*boundary="?([^";]+)"?', content_type.strip())
    if not match:
        raise Refused(400, "expected multipart/form-data with a boundary")
    delimiter = b"--" + match.group(1).encode()
    if not body.startswith(delimiter):
        raise Refused(400, "body does not start with the boundary")
    chunks = body.split(delimiter)
    if chunks[-1].strip() not in (b"--", b"") or not chunks[-1].startswith(b"--"):
        raise Refused(400, "body does not end with the closing boundary")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise Refused(400, "malformed part framing")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise Refused(400, "part without headers")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon:
                raise Refused(400, "malformed part header")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if not disposition.startswith("form-data") or not name or not filename:
            raise Refused(400, "each part must be form-data with a name and a filename")
        if PART_NAME_RE.fullmatch(name.group(1)) is None:
            raise Refused(400, f"unexpected part {name.group(1)!r}")
        parts.append({"part": name.group(1), "filename": filename.group(1), "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
    if not parts:
        raise Refused(400, "no files in the upload")
    return parts


def make_handler(codedx: CodeDx, context: str) -> type[BaseHTTPRequestHandler]:
    prefix = f"/{context}" if context else ""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            sys.stderr.write("codedx-double: " + (fmt % args) + "\n")

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _json(self, raw: bytes) -> Any:
            try:
                return json.loads(raw or b"null")
            except ValueError:
                raise Refused(400, "body is not JSON") from None

        def _handle(self, method: str) -> None:
            raw = self._body()
            path = self.path.split("?", 1)[0]
            if method == "GET" and path in ("/", f"{prefix}/", prefix):
                self._send(200, {"codedx": "double"})
                return
            try:
                if not path.startswith(f"{prefix}/api/"):
                    raise Refused(404, "not found")
                api = path[len(prefix):]
                codedx.check_key(self.headers)
                self._send(200, self._route(method, api, raw))
            except Refused as exc:
                codedx.record({"event": "refused", "status": exc.status, "method": method, "path": path,
                               "reason": str(exc)})
                self._send(exc.status, {"error": str(exc)})

        def _route(self, method: str, api: str, raw: bytes) -> Any:
            if api == "/api/projects":
                if method == "GET":
                    return codedx.list_projects()
                if method == "PUT":
                    return codedx.create_project(self._json(raw))
            m = re.fullmatch(r"/api/projects/(\d+)/analysis", api)
            if m and method == "POST":
                return codedx.upload(int(m.group(1)), self.headers.get("Content-Type", ""), raw)
            m = re.fullmatch(r"/api/projects/(\d+)/analyses", api)
            if m and method == "GET":
                return codedx.list_analyses(int(m.group(1)))
            m = re.fullmatch(r"/api/projects/(\d+)/analyses/(\d+)", api)
            if m and method == "PUT":
                return codedx.name_analysis(int(m.group(1)), int(m.group(2)), self._json(raw))
            m = re.fullmatch(r"/api/jobs/([A-Za-z0-9._-]+)", api)
            if m and method == "GET":
                return codedx.job(m.group(1))
            raise Refused(404, f"no route {method} {api}")

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._handle("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

    return Handler


def key_from_run_params(path: str) -> str:
    """The APIKEY a viewer image reads from run-params.sh (as SWAMP's run.sh does)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            words = shlex.split(line, comments=True)
            if len(words) == 2 and words[0] == "export" and words[1].startswith("APIKEY="):
                return words[1][len("APIKEY="):]
    raise SystemExit(f"codedx-double: no APIKEY in {path}")


def serve(codedx: CodeDx, port: int, context: str = "", host: str = "127.0.0.1",
          tls: tuple[str, str] | None = None) -> ThreadingHTTPServer:
    """Start the double in a background thread; call ``shutdown()`` on the result to stop it."""
    server = ThreadingHTTPServer((host, port), make_handler(codedx, context))
    server.daemon_threads = True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--context", default="")
    p.add_argument("--key", default="")
    p.add_argument("--run-params", default="")
    p.add_argument("--auth", default="system-key", choices=("system-key", "api-key"))
    p.add_argument("--record", default="")
    p.add_argument("--fail-uploads", type=int, default=0)
    p.add_argument("--job-polls", type=int, default=0)
    p.add_argument("--job-result", default="completed", choices=("completed", "failed"))
    p.add_argument("--tls-cert", default="")
    p.add_argument("--tls-key", default="")
    args = p.parse_args()
    key = args.key or (key_from_run_params(args.run_params) if args.run_params else "")
    if not key:
        raise SystemExit("codedx-double: --key or --run-params is required")
    codedx = CodeDx(key, args.auth, args.record, args.fail_uploads, args.job_polls, args.job_result)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = serve(codedx, args.port, args.context, tls=tls)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
