"""Build configuration that pyproject.toml cannot express: the suite ships inside the package.

The scenario files stay at the top of the repository (``scenarios/*.yaml``, the one place to
edit them); the build maps that folder onto the package ``harness._scenarios`` so that a
wheel carries every ``scenarios/*.yaml`` (new files included, no list to keep) and
``harness.engine.loader`` finds them with ``importlib.resources``. An editable install reads
the top-level folder directly. Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["harness", "harness.*"]), "harness._scenarios"],
    package_dir={"harness._scenarios": "scenarios"},
    package_data={"harness._scenarios": ["*.yaml"]},
)
