"""The set-up files agree with each other and admit the PyTorch on this machine's disk."""
from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _canonical(req: str) -> tuple[str, str]:
    parsed = Requirement(req)
    return parsed.name.lower().replace("_", "-"), str(parsed.specifier)


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    project = _pyproject()["project"]
    declared = {_canonical(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    in_env = {_canonical(r) for r in pip_section}
    assert in_env == declared, f"only in environment.yml: {in_env - declared}; only in pyproject: {declared - in_env}"


def test_torch_range_admits_the_versions_on_disk_and_forces_nothing_newer():
    reqs = {Requirement(r).name: Requirement(r) for r in _pyproject()["project"]["dependencies"]}
    assert Version("2.14.1") in reqs["torch"].specifier
    assert Version("0.29.1") in reqs["torchvision"].specifier
    assert Version("2.15.0") not in reqs["torch"].specifier


def test_console_script_and_dev_extra_declared():
    project = _pyproject()["project"]
    assert project["scripts"]["csnet"] == "csnet.cli:main"
    assert any(r.startswith("pytest") for r in project["optional-dependencies"]["dev"])


def test_ci_runs_the_readme_test_command_only():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    # the README's test command, after (only) installing the LaTeX engine tests/test_latex.py compiles with
    assert commands[-1] == "make test"
    assert all(any(word in line for word in ("pdflatex", "apt-get", "texlive", "sudo", "id -u")) or line.strip() == "fi"
               for line in commands[:-1]), commands
    assert "make test" in (ROOT / "README.md").read_text()
