"""dicom-harness: a testing and simulation harness for DICOM Storage SCP conformance.

The version has one source, ``[project] version`` in pyproject.toml, read back from the
installed package's metadata: ``dicom-harness --version``, results JSON ``harness_version``
and the installed distribution can never disagree.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dicom-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
