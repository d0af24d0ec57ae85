"""pytest plugin of dicom-harness (the ``pytest11`` entry point): see fixtures.py."""

from harness.pytest_plugin.fixtures import *  # noqa: F403
