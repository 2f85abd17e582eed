"""An assessment's ``in/``: the package, the tool, the run script and SWAMP's four config files.

Laid out as SWAMP's PreAssessment laid it out (reference/swamp-assessment.md
§1.3, §1.4), so a framework's ``run.sh`` and ``build_assess_driver`` find what
they always found:

* the tool's files: from ``toolpath``'s ``<platform>/in-files`` (else
  ``noarch/in-files``) and ``swamp-conf``, copied flat; or ``toolpath`` itself
  when it is an archive;
* the package archive under its own name;
* ``run.sh`` (0755) when the daemon names one (``swampd_runsh``);
* ``user-os-dependencies.conf`` and the merged ``os-dependencies.conf``;
* ``run-params.conf`` (sourced by run.sh as shell: every value shell-quoted),
  ``run.conf`` and ``package.conf`` (SWAMP's property format).

Deliberate differences: archives named with a SHA-512 in the BOG are checked
while they are copied (a mismatch stops the launch, never a run on the wrong
bytes); a value holding ``=`` keeps it in os-dependencies.conf (the Perl
dropped what followed a second ``=``); subdirectories of in-files are left
out with a warning (the Perl's flat ``cp`` failed the launch).
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shlex
import stat
import string
from pathlib import Path
from typing import Mapping

from swampd.bog import format_bog, write_private
from swampd.vruntask.job import Job
from swampd.vruntask.sandbox import MachineView, PrepareError, Sandbox

log = logging.getLogger(__name__)

RUN_PARAMS = "run-params.conf"
RUN_CONF = "run.conf"
PACKAGE_CONF = "package.conf"
RUN_SCRIPT = "run.sh"
OS_DEPENDENCIES = "os-dependencies.conf"
USER_OS_DEPENDENCIES = "user-os-dependencies.conf"
#: The account run.sh makes in a VM (SWAMP's values).
VM_USER_ID = "9999"
_PASSWORD_CHARS = string.ascii_letters + string.digits + "_"
_COPY_CHUNK = 1 << 20

#: package.conf key <- BOG key, as ``_createPackageConf`` maps them (reference §1.4).
PACKAGE_KEYS = (
    ("build-sys", "packagebuild_system"), ("build-file", "packagebuild_file"),
    ("build-target", "packagebuild_target"), ("build-opt", "packagebuild_opt"), ("build-dir", "packagebuild_dir"),
    ("build-cmd", "packagebuild_cmd"), ("config-opt", "packageconfig_opt"), ("config-dir", "packageconfig_dir"),
    ("config-cmd", "packageconfig_cmd"), ("android-sdk-target", "android_sdk_target"),
    ("android-redo-build", "android_redo_build"), ("android-lint-target", "android_lint_target"),
    ("gradle-wrapper", "use_gradle_wrapper"), ("android-maven-plugin", "android_maven_plugin"),
    ("maven-version", "maven_version"), ("package-classpath", "packageclasspath"),
    ("package-srcdir", "packagebytecodesourcepath"), ("package-auxclasspath", "packageauxclasspath"),
    ("package-exclude-paths", "exclude_paths"), ("package-dir", "packagesourcepath"),
    ("package-short-name", "packagename"),
)


def stage_inputs(job: Job, sandbox: Sandbox, view: MachineView) -> None:
    """Fill ``in/`` for a machine that sees the sandbox as ``view``; PrepareError with the reason if not."""
    settings = job.assessment
    in_dir = sandbox.in_dir
    dependencies: list[str] = []
    if settings.toolpath is not None:
        dependencies += copy_tool_files(settings.toolpath, settings.platform_identifier, settings.tool_sha512, in_dir)
    copy_checked(settings.packagepath, in_dir / settings.packagepath.name, settings.package_sha512, "package archive")
    if settings.runsh is not None:
        copy_checked(settings.runsh, in_dir / RUN_SCRIPT, "", "run script")
        os.chmod(in_dir / RUN_SCRIPT, 0o755)
    if settings.dependencies:
        platform = settings.platform_identifier.removeprefix("android-")
        line = f"dependencies-{platform}={settings.dependencies}"
        (in_dir / USER_OS_DEPENDENCIES).write_text(line + "\n", encoding="utf-8")
        dependencies.append(line)
    merged = merge_dependencies(dependencies)
    if merged:
        (in_dir / OS_DEPENDENCIES).write_text(merged, encoding="utf-8")
    password = settings.vm_password or "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(8))
    write_private(in_dir / RUN_PARAMS, render_run_params(run_params(view, password)))
    (in_dir / RUN_CONF).write_text(format_properties(run_conf(job)), encoding="utf-8")
    (in_dir / PACKAGE_CONF).write_text(format_properties(package_conf(job.bog)), encoding="utf-8")
    # SWAMP copies the BOG into out/ (PreAssessment): without swampd's own keys, which are ours.
    guest_bog = {k: v for k, v in job.bog.items() if not k.startswith("swampd_")}
    write_private(sandbox.out_dir / f"{job.execrunid}.bog", format_bog(guest_bog))


def run_params(view: MachineView, password: str) -> dict[str, str]:
    """run-params.conf (reference §1.4): the account, the shutdown wait, the OS logs, the event channels."""
    if view.shares_sandbox:  # the machine runs as us (process, docker): SWAMP gave the real uid and gid
        user_id, group_id = str(os.getuid()), str(os.getgid())
    else:
        user_id = group_id = VM_USER_ID
    return {
        "SWAMP_USERNAME": "builder", "SWAMP_GROUPNAME": "builder",
        "SWAMP_USERID": user_id, "SWAMP_GROUPID": group_id, "SWAMP_PASSWORD": password,
        "DELAY_SHUTDOWN_UNTIL": "1",
        "CAPTURE_FILES": "/var/log/messages /var/log/boot.log", "CAPTURE_ARCHIVE": "joboslog.tar.gz",
        "SWAMP_EVENT_FILE": view.events_file, "IP_ADDR_FILE": view.ip_file,
    }


def render_run_params(values: Mapping[str, str]) -> str:
    """``KEY=value`` lines, sorted, every value shell-quoted: run.sh sources the file, and it runs nothing.

    ``CAPTURE_FILES`` comes out as SWAMP wrote it, in single quotes.
    """
    return "".join(f"{key}={shlex.quote(values[key])}\n" for key in sorted(values))


def run_conf(job: Job) -> dict[str, str]:
    return {"goal": "build+assess+parse",
            "internet-inaccessible": "true" if job.assessment.internet_inaccessible else "false"}


def package_conf(bog: Mapping[str, str]) -> dict[str, str]:
    """package.conf from the BOG (``_createPackageConf``): trimmed values, ``null`` and '' absent."""
    def value(key: str) -> str:
        found = bog.get(key, "").strip()
        return "" if found == "null" else found

    conf = {conf_key: value(bog_key) for conf_key, bog_key in PACKAGE_KEYS if value(bog_key)}
    package_type = value("packagetype")
    if "Bytecode" in package_type and "build-sys" not in conf:
        conf["build-sys"] = "java-bytecode"
    if package_type.startswith("Ruby"):
        words = package_type.split()
        conf["package-language"] = words[0]
        conf["package-type"] = words[-1].lower()
        if value("language_version"):
            conf["package-language-version"] = f"ruby-{value('language_version')}"
    elif package_type in ("Python2", "Python3"):
        conf["package-language"] = f"Python-{package_type[-1]}"
    elif package_type in ("Web Scripting", ".NET"):
        if value("package_language"):
            conf["package-language"] = value("package_language")
    for version in ("7", "8"):
        if f"Java {version}" in package_type:
            conf["package-language-version"] = f"java-{version}"
    if package_type == ".NET" and value("packagebuild_settings"):
        conf["package-build-settings"] = value("packagebuild_settings")
    conf["package-archive"] = Path(value("packagepath")).name
    conf["package-version"] = value("packageversion") or "unknown"
    return conf


def format_properties(values: Mapping[str, str]) -> str:
    """SWAMP's ``saveProperties`` format, without its comment line: sorted ``key=value`` lines.

    A value of N lines is written ``key:NL=`` followed by its lines, one with
    surrounding white space ``key:=value``; the frameworks' readers undo both.
    """
    lines = []
    for key in sorted(values):
        value = values[key]
        if "\n" in value:
            lines.append(f"{key}:{value.count(chr(10)) + 1}L={value}")
        elif value != value.strip():
            lines.append(f"{key}:={value}")
        else:
            lines.append(f"{key}={value}")
    return "".join(line + "\n" for line in lines)


def merge_dependencies(lines: list[str]) -> str:
    """``_mergeDependencies``: values of one key joined (each followed by a space), keys sorted."""
    merged: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if not sep or not key.strip():
            continue
        merged[key.strip()] = merged.get(key.strip(), "") + value.strip() + " "
    return "".join(f"{key}={merged[key]}\n" for key in sorted(merged))


def copy_tool_files(toolpath: Path, platform: str, checksum: str, in_dir: Path) -> list[str]:
    """The tool's in-files and swamp-conf files, copied flat; the os-dependency lines they carry."""
    if toolpath.is_file():
        copy_checked(toolpath, in_dir / toolpath.name, checksum, "tool archive")
        return []
    tool_dir = Path(str(toolpath).removesuffix(".gz").removesuffix(".tar"))
    base = tool_dir / platform if platform and (tool_dir / platform).is_dir() else tool_dir / "noarch"
    in_files = base / "in-files"
    if not in_files.is_dir():
        raise PrepareError(f"the tool has no in-files for platform {platform or 'noarch'} under {tool_dir}")
    _copy_flat(in_files, in_dir, required=True)
    dependencies: list[str] = []
    conf_dir = base / "swamp-conf"
    if conf_dir.is_dir():
        for path in _copy_flat(conf_dir, in_dir, required=False):
            if "os-dependencies" in path.name and path.name.endswith(".conf"):
                dependencies += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return dependencies


def _copy_flat(source: Path, dest: Path, required: bool) -> list[Path]:
    copied = []
    for entry in sorted(source.iterdir()):
        if entry.is_dir():
            log.warning("tool files: %s is a directory; left out (SWAMP copies in-files flat)", entry)
            continue
        try:
            copy_checked(entry, dest / entry.name, "", "tool file")
        except PrepareError:
            if required:
                raise
            log.warning("tool files: %s not copied", entry)
            continue
        copied.append(dest / entry.name)
    return copied


def copy_checked(source: Path, dest: Path, sha512: str, what: str) -> str:
    """Copy a regular file (mode kept, links not followed at the last step); its SHA-512.

    With ``sha512`` given, a file whose bytes do not match is not left in ``in/``.
    """
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise PrepareError(f"cannot read the {what} {source}: {exc.strerror}") from None
    digest = hashlib.sha512()
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PrepareError(f"the {what} {source} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as src, open(tmp, "wb") as out:
            while block := src.read(_COPY_CHUNK):
                digest.update(block)
                out.write(block)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o755 | 0o600)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PrepareError(f"cannot copy the {what} {source}: {exc.strerror}") from None
    except PrepareError:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    found = digest.hexdigest()
    if sha512 and found != sha512:
        tmp.unlink(missing_ok=True)
        raise PrepareError(f"the {what} {source.name} does not match its SHA-512 checksum")
    os.replace(tmp, dest)
    return found
