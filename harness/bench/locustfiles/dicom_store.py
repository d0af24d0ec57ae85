"""Locustfile: DICOM C-STORE load with dicom-harness (``dicom-harness bench --locust``).

Run it directly with ``locust -f "$(dicom-harness bench --locust-file)" --dicom-target
HOST:PORT ...``; the options are those of :mod:`harness.bench.locust_user` (``--dicom-*``).
"""

from harness.bench.locust_user import DicomStoreUser

__all__ = ["DicomStoreUser"]
