"""The ``upload`` outbox handler: results of a launch into the viewer's Code Dx, once each.

A launch's results are recorded with the launch (``results`` table); from then
on the daemon owns them.  This handler runs when the viewer turns READY (an
``upload`` item comes with every state change) and when results arrive for a
viewer that is already READY.  For each result not yet uploaded it finds or
creates the Code Dx project named after the package, posts the files as one
analysis, and polls the analysis job to its end.

Exactly once, across crashes, is the point of the bookkeeping in ``uploads``:

    pending --(mark, commit)--> uploading --POST--> (name it) --(commit)--> posted --job ends--> done | failed

Before the POST the attempt is committed as ``uploading`` with a marker and
the ids of the analyses the project already had.  The POST's answer is then
used to name the analysis after the marker, and recorded as ``posted``.  If the
daemon dies anywhere between the POST and that record, the next attempt finds
``uploading`` and asks Code Dx first: an analysis carrying the marker, or else
one that appeared since the marker was written, is adopted instead of posting
again.  A POST that Code Dx clearly refused (4xx) created nothing, so that
attempt goes back to ``pending``; one that timed out stays ``uploading``, so
that Code Dx is asked.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tarfile
import time
import uuid
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from swampd.clients.codedx import (
    JOB_DONE,
    JOB_FAILED,
    CodeDxClient,
    CodeDxError,
    CodeDxRejected,
    CodeDxUnavailable,
)
from swampd.config import CodeDxConfig, fill_placeholders
from swampd.failpoints import failpoint
from swampd.paths import PathRefused, open_confined
from swampd.states import ViewerState
from swampd.store import OutboxItem, Store, ViewerRecord

log = logging.getLogger(__name__)

#: Upload states after which a result is never sent again.
FINAL = frozenset({"done", "failed", "duplicate"})
#: Package types whose "source archive" is bytecode, not source (SWAMP skipped
#: Java 7 bytecode, 3, and meant Java 8 bytecode, 13, too).
BYTECODE_PACKAGE_TYPES = frozenset({"3", "13"})
#: HTTP statuses on the POST that mean "this upload, as it is, will never be taken".
PERMANENT_STATUSES = frozenset({400, 413, 415, 422})


class UploadFailed(Exception):
    """This result cannot be uploaded, now or later (missing file, refused body, failed job)."""


class Uploader:
    """Performs ``upload`` outbox items."""

    def __init__(self, store: Store, config: CodeDxConfig, work_dir: Path, roots: Sequence[str] = (),
                 max_bytes: int = 4 * 1024 ** 3, clock: Callable[[], float] = time.time) -> None:
        """``roots``: where result files may be (config ``result_roots``); ``max_bytes``: the largest file read."""
        self.store = store
        self.config = config
        self.work_dir = Path(work_dir)
        self.roots = tuple(roots)
        self.max_bytes = max_bytes
        self.clock = clock

    # -- the outbox handler -----------------------------------------------
    def handle(self, item: OutboxItem) -> None:
        """Upload what is pending for the item's viewer if it is READY; raise to be retried."""
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, ViewerRecord) or record.viewer not in self.config.viewers:
            return
        if record.viewer_state is not ViewerState.READY or not record.vmip:
            return  # the transition to READY brings another item
        rows = self.store.uploads(record.id)
        if not any(row["state"] not in FINAL for row in rows):
            return
        with self._client(record) as client:
            for row in rows:
                if row["state"] in FINAL:
                    continue
                try:
                    self._upload_one(client, record, row, rows)
                except UploadFailed as exc:
                    self._finish(record, row, "failed", f"upload failed: {exc}")
                    log.error("%s: result %d not uploaded: %s", record.execrunid, row["result_id"], exc)

    def _client(self, record: ViewerRecord) -> CodeDxClient:
        base = fill_placeholders(self.config.base_url, {
            "vmip": record.vmip, "url_uuid": record.url_uuid,
            "project": record.projectid, "viewer": record.viewer,
        })
        verify: bool | str = self.config.ca_bundle or self.config.verify_tls
        return CodeDxClient(base, record.apikey, self.config.auth, verify, self.config.timeout)

    # -- one result ----------------------------------------------------------
    def _upload_one(self, client: CodeDxClient, record: ViewerRecord, row: dict[str, Any],
                    rows: list[dict[str, Any]]) -> None:
        result, rid = row["result"], row["result_id"]
        fp = fingerprint(result)
        state = row["state"]
        if state in ("uploading", "posted") and row["epoch"] != record.epoch:
            state = "pending"  # sent to an earlier launch's viewer, which is gone
        if state == "pending" and any(
                o["state"] == "done" and o["fingerprint"] == fp and o["epoch"] == record.epoch
                and o["result_id"] != rid for o in rows):
            self._finish(record, row, "duplicate", "same files already uploaded to this viewer")
            return
        if state == "uploading":
            analysis_id = self._adopt(client, row)
            if analysis_id is not None:
                self._finish(record, row, "done", f"analysis {analysis_id} found in Code Dx after an interruption",
                             analysis_id=analysis_id)
                return
            state = "pending"
        if state == "pending":
            self._post(client, record, row, fp)
            row = next(r for r in self.store.uploads(record.id) if r["result_id"] == rid)
        self._wait_job(client, record, row)

    def _post(self, client: CodeDxClient, record: ViewerRecord, row: dict[str, Any], fp: str) -> None:
        result, rid = row["result"], row["result_id"]
        scratch = self.work_dir / f"result-{rid}"
        opened = ExitStack()
        try:
            files = upload_files(result, scratch, self.roots, self.max_bytes, opened)
            project_id = client.find_or_create_project(result["package"])
            before = sorted(int(a["id"]) for a in client.analyses(project_id) if isinstance(a.get("id"), int))
            attempt = f"swampd-{rid}-{uuid.uuid4().hex[:12]}"
            with self.store.transaction() as tx:
                tx.set_upload(rid, state="uploading", fingerprint=fp, epoch=record.epoch, attempt=attempt,
                              project_id=project_id, before_ids=before, analysis_id=None, job_id="", detail="")
            failpoint("upload.before_post")
            try:
                analysis = client.upload(project_id, files)
            except CodeDxRejected as exc:
                with self.store.transaction() as tx:  # refused outright: nothing was created
                    tx.set_upload(rid, state="pending", detail=str(exc))
                if exc.status in PERMANENT_STATUSES:
                    raise UploadFailed(str(exc)) from None
                raise
            failpoint("upload.after_post")
            try:
                client.name_analysis(project_id, analysis.analysis_id, analysis_name(result, attempt))
            except CodeDxError as exc:  # the name only helps adoption after a crash
                log.warning("%s: could not name analysis %d: %s", record.execrunid, analysis.analysis_id, exc)
            with self.store.transaction() as tx:
                tx.set_upload(rid, state="posted", analysis_id=analysis.analysis_id, job_id=analysis.job_id)
            log.info("%s: result %d (package %s, tool %s) posted as analysis %d (job %s)", record.execrunid, rid,
                     result["package"], result.get("tool_name") or "-", analysis.analysis_id, analysis.job_id)
        finally:
            opened.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def _adopt(self, client: CodeDxClient, row: dict[str, Any]) -> int | None:
        """The analysis an interrupted attempt created, if Code Dx has it."""
        if row["project_id"] is None:
            return None
        try:
            analyses = client.analyses(int(row["project_id"]))
        except CodeDxRejected as exc:
            if exc.status == 404:
                return None  # the project is gone, and the analysis with it
            raise
        for analysis in analyses:
            if row["attempt"] and row["attempt"] in str(analysis.get("name") or ""):
                return int(analysis["id"])
        before = set(row["before_ids"])
        new = sorted(int(a["id"]) for a in analyses
                     if isinstance(a.get("id"), int) and a["id"] not in before and not a.get("name"))
        if len(new) > 1:
            log.warning("project %s has %d new unnamed analyses; adopting the first", row["project_id"], len(new))
        return new[0] if new else None

    def _wait_job(self, client: CodeDxClient, record: ViewerRecord, row: dict[str, Any]) -> None:
        deadline = self.clock() + self.config.job_wait
        while True:
            status = client.job_status(row["job_id"])
            if status == JOB_DONE:
                self._finish(record, row, "done", f"analysis {row['analysis_id']} completed")
                log.info("%s: result %d uploaded (analysis %s)", record.execrunid, row["result_id"],
                         row["analysis_id"])
                return
            if status in JOB_FAILED:
                raise UploadFailed(f"Code Dx analysis {row['analysis_id']} ended {status}")
            if self.clock() > deadline:
                raise CodeDxUnavailable(f"analysis job {row['job_id']} still {status} after {self.config.job_wait:g}s")
            current = self.store.get_run_by_id(record.id)
            if (not isinstance(current, ViewerRecord) or current.epoch != record.epoch
                    or current.viewer_state is not ViewerState.READY):
                raise CodeDxUnavailable("the viewer is no longer READY")
            time.sleep(self.config.poll_interval)

    def _finish(self, record: ViewerRecord, row: dict[str, Any], state: str, detail: str, **extra: Any) -> None:
        with self.store.transaction() as tx:
            tx.set_upload(row["result_id"], state=state, detail=detail[:2000], epoch=record.epoch,
                          fingerprint=fingerprint(row["result"]), **extra)
            current = tx.get_run_by_id(record.id)
            if current is not None:
                tx.note(current, "codedx", f"result {row['result_id']} {state}: {detail}")


def fingerprint(result: dict[str, Any]) -> str:
    """What makes two results the same upload: package, tool, files, source."""
    keys = ("package", "package_type", "tool_name", "files", "source_archive")
    canonical = json.dumps({k: result.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def analysis_name(result: dict[str, Any], attempt: str) -> str:
    tool = result.get("tool_name") or "results"
    return f"{tool} ({attempt})"[:200]


def upload_files(result: dict[str, Any], scratch: Path, roots: Sequence[str], max_bytes: int,
                 opened: ExitStack) -> list[tuple[str, BinaryIO]]:
    """The (name, open file) pairs to post: the result files, then the source as a zip.

    Every file is opened confined to ``roots`` (see swampd.paths): a caller's
    path cannot make the daemon upload a file from elsewhere, a device or a
    FIFO.  The files stay open, in ``opened``, until the caller closes it.
    """
    files: list[tuple[str, BinaryIO]] = []
    for name in result.get("files", []):
        try:
            files.append((Path(name).name, opened.enter_context(open_confined(name, roots, max_bytes, "result file"))))
        except PathRefused as exc:
            raise UploadFailed(str(exc)) from None
    source = result.get("source_archive") or ""
    if source and str(result.get("package_type", "")) not in BYTECODE_PACKAGE_TYPES:
        try:
            fh = opened.enter_context(open_confined(source, roots, max_bytes, "source archive"))
        except PathRefused as exc:
            log.warning("%s; uploading the results without it", exc)
        else:
            files.append(source_zip(Path(source).name, fh, scratch, opened))
    if not files:
        raise UploadFailed("the result names no files")
    return files


def source_zip(name: str, fh: BinaryIO, scratch: Path, opened: ExitStack) -> tuple[str, BinaryIO]:
    """The source archive as a zip (Code Dx reads source from zips); tar and gem files are converted."""
    stem = name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".gem", ".jar", ".whl", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if zipfile.is_zipfile(fh):
        fh.seek(0)
        return f"{stem}.zip", fh  # jar, wheel and zip files are zips already
    fh.seek(0)
    try:
        outer = tarfile.open(fileobj=fh)
    except tarfile.TarError:
        raise UploadFailed(f"source archive {name} is neither a zip nor a tar archive") from None
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / f"{stem}.zip"
    with outer:
        inner = _gem_data(outer)
        if inner is not None:
            with tarfile.open(fileobj=inner) as data:
                _tar_to_zip(data, target)
        else:
            _tar_to_zip(outer, target)
    return target.name, opened.enter_context(open(target, "rb"))


def _gem_data(archive: tarfile.TarFile) -> Any:
    """A Ruby gem is a tar whose sources are in its ``data.tar.gz`` member."""
    try:
        member = archive.getmember("data.tar.gz")
    except KeyError:
        return None
    return archive.extractfile(member)


def _tar_to_zip(archive: tarfile.TarFile, target: Path) -> None:
    """Copy the regular files of a tar into a zip; absolute or '..' names are skipped."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for member in archive:
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            if not member.isfile() or name.startswith("/") or ".." in name.split("/"):
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            with source, out.open(name, "w") as dest:
                shutil.copyfileobj(source, dest, 1 << 20)
