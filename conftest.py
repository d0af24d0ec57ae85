"""pytest settings of this repository that depend on which plugins are installed.

pytest-benchmark is optional: the ``test`` extra brings it, a bare ``pip install pytest``
does not. Its ``--benchmark-disable`` cannot sit in ``addopts`` (an unknown option there
stops every run), so benchmarks are switched off here, and only when the plugin is loaded;
``-m bench --benchmark-enable`` still measures.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Runs before pytest-benchmark's own pytest_configure (trylast), which reads the option.
    if config.pluginmanager.hasplugin("benchmark"):
        config.option.benchmark_disable = True
