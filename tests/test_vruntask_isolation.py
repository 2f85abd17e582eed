"""The execute-node agent imports none of the daemon's code (issue 8, item 7).

vruntask runs on execute nodes next to a scheduler's daemon, not ours; it
meets the daemon only through the job directory (``swampd.jobdir``,
``swampd.bog``) and XML-RPC.  Importing every vruntask module, in a fresh
interpreter, must not load ``swampd.launchpad`` or ``swampd.agentmonitor``.
"""
from __future__ import annotations

import json
import subprocess
import sys

from support.daemon import SRC

PROBE = """
import json, pkgutil, sys, importlib
import swampd.vruntask
names = ["swampd.cli.vruntask_main"] + [m.name for m in pkgutil.walk_packages(swampd.vruntask.__path__, "swampd.vruntask.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(m for m in sys.modules if m.startswith("swampd."))}))
"""


def test_vruntask_imports_no_daemon_code() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    found = json.loads(done.stdout)
    assert "swampd.vruntask.runner" in found["imported"] and "swampd.vruntask.platforms.vm" in found["imported"]
    daemon_side = [m for m in found["loaded"]
                   if m.split(".")[1] in ("launchpad", "agentmonitor") or m.startswith("swampd.store")]
    assert daemon_side == [], daemon_side
