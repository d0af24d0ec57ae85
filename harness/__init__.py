"""dicom-harness: a testing and simulation harness for DICOM Storage SCP conformance."""

__version__ = "0.1.0"
