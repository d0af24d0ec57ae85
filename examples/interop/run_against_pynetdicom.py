"""Run the conformance suite against pynetdicom's storescp (``python
run_against_pynetdicom.py [dicom-harness run options]``); reports go to
``reports/pynetdicom/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: its folder is on sys.path, so the shared helper imports directly.
from _peer import run_against

AE_TITLE = "STORESCP"


def command(port: int, storage: Path) -> list[str]:
    # `python -m pynetdicom` rather than the `storescp` script, which DCMTK's may shadow.
    return [sys.executable, "-m", "pynetdicom", "storescp", "--ae-title", AE_TITLE,
            "--bind-address", "127.0.0.1", "--output-directory", str(storage), str(port)]


if __name__ == "__main__":
    sys.exit(run_against("pynetdicom", command, AE_TITLE, sys.argv[1:]))
