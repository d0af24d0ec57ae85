"""What a user gets from ``pip install``: the built sdist and wheel carry the whole suite.

The wheel test builds the sdist and the wheel from a copy of this tree (``python -m build``:
the wheel is built from the sdist, so both must be complete), checks their metadata with
``twine check --strict``, installs the wheel into a fresh venv outside the source tree and
there, from an empty folder, runs README's commands: ``dicom-harness list``,
``dicom-harness run`` (the main job: the whole suite against the embedded SCP, reports in
``./reports``), ``pytest --dicom --collect-only``,
``dicom-harness --version`` and ``python -m harness --version``. Dependencies come from the
package index (pip's cache makes the second run fast). The other tests check the editable
install this test run uses, and the error when the suite is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import harness
from harness.cli import main
from harness.engine import loader
from harness.engine.loader import SOURCE_SUITE, ScenarioError, load_suite, suite_paths

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_FILES = sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml"))
MIN_SCENARIOS = 150  # the suite without slow scenarios has more; fewer means files are lost
# Not part of a source distribution: local state of a checkout.
IGNORE = shutil.ignore_patterns(".git", ".venv*", ".tox", "build", "dist", "*.egg-info",
                                "reports", "__pycache__", ".*_cache", ".hypothesis",
                                ".benchmarks", "_scenarios")
STEP_TIMEOUT = 600  # seconds per command; building and installing reach the package index


def run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its output, or a failure that shows the command and what it printed."""
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=STEP_TIMEOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def default_ids(group: str | None = None) -> list[str]:
    """The ids the default run selects (slow scenarios need --slow), from the source tree."""
    return [sc.id for sc in load_suite() if "slow" not in sc.tags and group in (None, sc.group)]


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


@pytest.mark.packaging
@pytest.mark.slow
def test_wheel_in_a_fresh_venv_carries_the_suite(tmp_path: Path) -> None:
    for module in ("build", "twine"):  # a failure, not a skip: CI must not lose this check
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"'{module}' is not installed: pip install -e '.[test]'")
    src, dist = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    run([sys.executable, "-m", "build", "--outdir", dist, src], cwd=tmp_path)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(dist.iterdir())
    run([sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists], cwd=tmp_path)

    # Every scenarios/*.yaml of the tree is in the wheel (no list of names to keep).
    names = zipfile.ZipFile(wheels[0]).namelist()
    shipped = sorted(n.removeprefix("harness/_scenarios/") for n in names
                     if n.startswith("harness/_scenarios/"))
    assert shipped == SCENARIO_FILES
    assert {"harness/py.typed", "harness/__main__.py",
            "harness/report/templates/report.html.j2"} <= set(names)

    venv, empty = tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    run([sys.executable, "-m", "venv", venv], cwd=empty)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python, cli = bindir / "python", bindir / "dicom-harness"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME",
                                                            "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run([python, "-m", "pip", "install", "-q", wheels[0], "pytest"], cwd=empty, env=env)

    where = run([python, "-c", "import harness; print(harness.__file__)"], cwd=empty, env=env)
    assert Path(where.strip()).is_relative_to(venv), where  # not this tree
    installed = run([python, "-c", "import importlib.metadata as m; "
                     "print(m.version('dicom-harness'))"], cwd=empty, env=env).strip()
    assert installed == project_version()
    assert run([cli, "--version"], cwd=empty, env=env).split() == ["dicom-harness", installed]
    assert run([python, "-m", "harness", "--version"], cwd=empty,
               env=env).split() == ["dicom-harness", installed]

    ids = run([cli, "list", "--format", "ids"], cwd=empty, env=env).split()
    assert len(ids) >= MIN_SCENARIOS and ids == default_ids()

    # README's main job, verbatim, from an empty folder: the whole default suite against the
    # embedded reference SCP, exit 0, every report written into ./reports.
    run([cli, "run", "-q"], cwd=empty, env=env)
    reports = empty / "reports"
    assert {"results.json", "report.html", "junit.xml"} <= {p.name for p in reports.iterdir()}
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert results["harness_version"] == installed
    assert sorted(s["id"] for s in results["scenarios"]) == sorted(default_ids())
    assert results["summary"]["failed"] == results["summary"]["errored"] == 0

    out = run([python, "-m", "pytest", "--dicom", "--collect-only", "-q",
               "-p", "no:cacheprovider"], cwd=empty, env=env)
    collected = re.search(r"(\d+) tests? collected", out)
    assert collected is not None, out[-2000:]
    assert int(collected.group(1)) == len(ids) >= MIN_SCENARIOS


def test_this_install_finds_every_scenario_file() -> None:
    # The editable install (what .ci/run and README's tests use) reads scenarios/ itself.
    assert loader.suites_dir() == SOURCE_SUITE
    assert [p.name for p in suite_paths(None)] == SCENARIO_FILES


def test_version_is_the_package_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    expected = version("dicom-harness")
    assert harness.__version__ == expected == project_version()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.split() == ["dicom-harness", expected]
    out = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path).stdout
    assert out.split() == ["dicom-harness", expected]
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-k", "assoc.baseline", "-q", "--no-html", "--json", "r.json"]) == 0
    results = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert results["harness_version"] == expected


def test_an_empty_default_suite_names_where_it_looked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    packaged, source = tmp_path / "site" / "harness" / "_scenarios", tmp_path / "scenarios"
    source.mkdir()
    monkeypatch.setattr(loader, "SUITE_DIRS", (packaged, source))
    with pytest.raises(ScenarioError, match="no scenario files"):
        load_suite()
    for argv in (["run"], ["list"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert str(packaged) in err and str(source) in err, err
        assert "check --suite" not in err and len(err.strip().splitlines()) == 1
    # A named suite looks in the same places.
    assert main(["run", "--suite", "a"]) == 2
    assert str(source) in capsys.readouterr().err


def test_nothing_selected_names_only_the_options_given(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", "no-such-scenario-word"]) == 2
    err = capsys.readouterr().err
    assert "-k 'no-such-scenario-word'" in err and "--suite" not in err
    assert main(["run", "--suite", "a", "-k", "no-such-scenario-word", "--slow"]) == 2
    err = capsys.readouterr().err
    assert "--suite a and -k 'no-such-scenario-word'" in err and "slow" not in err


def test_an_empty_suite_folder_is_an_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--suite", str(tmp_path)]) == 2
    assert f"no scenario files (*.yaml) in folder {tmp_path}" in capsys.readouterr().err
