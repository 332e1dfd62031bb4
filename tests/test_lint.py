"""ruff over the repository, mypy over codec/, train/ and export/, and no private names across modules."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed")
    res = subprocess.run(["ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sys.version_info >= (3, 10)


def test_mypy_clean_run_time():
    if shutil.which("mypy") is None:
        pytest.skip("mypy not installed")
    res = subprocess.run(["mypy"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_used_across_modules():
    """Public names are imported by others; private names stay in their module."""
    import ast

    problems = []
    for folder in ("codec", "train", "export", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            modules = set()  # local names bound to modules of this project
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    ours = node.level > 0 or (node.module or "").startswith("aecodec")
                    for alias in node.names:
                        if ours and _private(alias.name):
                            problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}")
                        if ours:
                            modules.add(alias.asname or alias.name)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("aecodec"):
                            modules.add(alias.asname or alias.name.split(".")[0])
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                        and node.value.id in modules:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not problems, "\n".join(problems)
