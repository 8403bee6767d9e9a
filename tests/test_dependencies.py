"""What the server imports is what a plain install (the Docker image's) gets: every third-party
module imported by `server/` is one of the project's runtime dependencies, not only a dev extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from server.config import PROJECT_ROOT

# Imported only by the test support modules, which a test run installs with the dev extra.
TEST_SUPPORT = {"testing.py", "pytest_plugin.py"}


def _runtime_distributions() -> set[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    names = (re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0] for d in project["dependencies"])
    return {name.lower().replace("_", "-") for name in names}


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (PROJECT_ROOT / "server").rglob("*.py"):
        if path.name in TEST_SUPPORT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_every_module_the_server_imports_is_a_runtime_dependency() -> None:
    distributions = packages_distributions()
    runtime = _runtime_distributions()
    missing = {}
    for module in sorted(_imported_modules()):
        if module in sys.stdlib_module_names or module == "server":
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if owners and not owners & runtime:
            missing[module] = sorted(owners)
    assert not missing, f"imported by server/ but not in [project] dependencies: {missing}"
