"""Assessment results for people: SCARF -> nativereport.json, failedreport.json, the HTML page.

The Native viewer of SWAMP is synchronous: ``launch_viewer`` turns a stored
result into one file in ``--outdir`` and prints its name.  This package holds
that work, with no daemon involved and standard library only:

* ``scarf``        SCARF XML read as a stream (bounded memory), DOCTYPEs refused
* ``toollist``     which bug fields each tool shows (SWAMP's whitelist)
* ``nativejson``   nativereport.json written bug by bug, in SWAMP's layout
* ``htmlreport``   the same findings as a page a person reads (static assets in ``static/``)
* ``archives``     tar and zip extraction that cannot leave its directory or grow unbounded
* ``statusout``, ``outputfiles``, ``failedreport``   failedreport.json from outputdisk.tar.gz
* ``native``       the Native viewer itself: which of the above a request needs
"""
from __future__ import annotations
