"""Run the conformance suite against DCMTK's storescp (``python run_against_dcmtk.py
[dicom-harness run options]``); reports go to ``reports/dcmtk/``.

storescp runs with ``--fork`` (one process per association, so the concurrency scenarios
can pass), ``+xa`` (every transfer syntax it supports) and ``-dhl`` (no reverse DNS). Set
``STORESCP`` to use another binary than ``/usr/bin/storescp``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script: its folder is on sys.path, so the shared helper imports directly.
from _peer import run_against

AE_TITLE = "STORESCP"


def command(port: int, storage: Path) -> list[str]:
    # /usr/bin explicitly: pynetdicom installs its own `storescp` that shadows DCMTK's.
    binary = os.environ.get("STORESCP", "/usr/bin/storescp")
    return [binary, "--fork", "+xa", "-dhl", "-aet", AE_TITLE, "-od", str(storage), str(port)]


if __name__ == "__main__":
    sys.exit(run_against("dcmtk", command, AE_TITLE, sys.argv[1:]))
