"""The CI files: .ci/run is exactly the README's test command; the GitHub
workflows pass GitHub's workflow schema and their shell steps parse
(`make lint-ci`), and the schema check does reject a broken workflow; the
cibuildwheel configuration builds a cp311-abi3 wheel and one per older Python per architecture."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_make

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def lint():
    """`make lint-ci` (it installs check-jsonschema and cibuildwheel into the environment)."""
    return run_make(ROOT, "lint-ci")


def test_ci_run_is_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test +# ", readme, re.M)
    lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines[-1] == "make test"
    assert "bash .ci/run" in (ROOT / ".github" / "workflows" / "ci.yml").read_text()


def test_make_lint_ci_passes(lint):
    res = lint
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok -- validation done" in res.stdout
    assert ("cibuildwheel would build: cp39-manylinux_x86_64 cp310-manylinux_x86_64 cp311-manylinux_x86_64 "
            "cp39-manylinux_aarch64 cp310-manylinux_aarch64 cp311-manylinux_aarch64") in res.stdout


def test_schema_check_rejects_a_broken_workflow(lint, tmp_path):
    good = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(good.replace("runs-on: ubuntu-24.04\n    timeout-minutes: 90",
                                "runs_on: ubuntu-24.04\n    timeout-minutes: ninety", 1))
    assert bad.read_text() != good
    res = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema",
                          "vendor.github-workflows", str(bad)], capture_output=True, text=True)
    assert res.returncode != 0
    assert "validation errors" in res.stdout + res.stderr
