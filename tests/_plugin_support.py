"""How the project's own tests load the pytest plugin in the pytest runs they start."""

from __future__ import annotations

from importlib.metadata import entry_points

PLUGIN_MODULE = "harness.pytest_plugin"


def plugin_args() -> list[str]:
    """``-p`` for the plugin: by its ``pytest11`` entry point name when the package installs
    one (``-p harness.pytest_plugin`` would then register the module a second time under
    another name, which pytest refuses), else by module name."""
    for ep in entry_points(group="pytest11"):
        if ep.value == PLUGIN_MODULE:
            return ["-p", ep.name]
    return ["-p", PLUGIN_MODULE]
