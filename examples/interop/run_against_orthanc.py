"""Run the conformance suite against Orthanc (``python run_against_orthanc.py
[dicom-harness run options]``); reports go to ``reports/orthanc/``.

Orthanc (Debian package ``orthanc``) runs from a JSON configuration written for the
occasion: its own DICOM port, the harness's storage folder as ``StorageDirectory`` (files in
Orthanc's own layout, found by the SOP Instance UID inside them), its index database in
another temporary folder (outside the storage folder, so the stored-data checks never see
it), no plugins, HTTP off. Set ``ORTHANC`` to use another binary than ``/usr/sbin/Orthanc``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Run as a script: its folder is on sys.path, so the shared helper imports directly.
from _peer import run_against

AE_TITLE = "ORTHANC"


def command(port: int, storage: Path) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="dicom-harness-orthanc-config-"))
    atexit.register(shutil.rmtree, folder, True)
    config = {
        "Name": "dicom-harness", "DicomAet": AE_TITLE, "DicomPort": port,
        "HttpServerEnabled": False, "RemoteAccessAllowed": False,
        "StorageDirectory": str(storage), "IndexDirectory": str(folder / "index"),
        "DicomCheckCalledAet": False, "UnknownSopClassAccepted": False,
        "DicomAlwaysAllowStore": True, "StorageCompression": False, "Plugins": [],
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return [os.environ.get("ORTHANC", "/usr/sbin/Orthanc"), str(path)]


if __name__ == "__main__":
    sys.exit(run_against("orthanc", command, AE_TITLE, sys.argv[1:]))
