"""Programs that run inside an assessment machine (or as its local stand-in), not in swampd's processes.

They write the framework's ``out/`` layout that the execute node collects:
``runsh`` is the process platform's run.sh, ``cppcheck`` a real tool
integration, ``framework`` what every integration writes through
(status.out, archives with their conf files).  Each runs as
``python -m swampd.tools.<name>``; nothing in the daemon or in vruntask
imports them.
"""
from __future__ import annotations
