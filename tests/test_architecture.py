"""The layers hold: imports point down (`[tool.importlinter]` in pyproject.toml), no module takes
part in an import circle (type-only imports included), and no module evaluates code from strings.
The adapter contract (server/engine/adapter.py) is what its consumers type against and call: they
do not name `PostgresAdapter`, and it promises nothing server code does not call.

docs/architecture.md draws the layers these rules keep.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    # `lint-imports` reads pyproject.toml from the working directory and prints what broke.
    monkeypatch.chdir(ROOT)
    assert lint_imports(no_cache=True, no_logo=True) == 0


def test_no_module_takes_part_in_an_import_circle() -> None:
    graph = grimp.build_graph("server", cache_dir=None)
    circles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert circles == []


def test_an_import_circle_would_be_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check above must be able to fail: two modules that import each other, one only for types.
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circled.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circled.a import A\nB = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circled", cache_dir=None)
    assert graph.chain_exists(importer="circled.b", imported="circled.a")
    assert graph.chain_exists(importer="circled.a", imported="circled.b")


def test_no_code_is_evaluated_from_strings() -> None:
    calls = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"eval", "exec", "compile"}
            ):
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}")
    assert calls == []


def _code(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def test_only_the_services_and_the_command_line_name_the_postgres_adapter() -> None:
    # Everything else types against the protocols of server/engine/adapter.py.
    naming = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "server").rglob("*.py")
        if any(
            (isinstance(node, ast.Name) and node.id == "PostgresAdapter")
            or (isinstance(node, ast.alias) and node.name == "PostgresAdapter")
            for node in ast.walk(_code(path))
        )
    )
    assert naming == ["server/cli/admin.py", "server/engine/postgres.py", "server/services.py"]


def test_the_adapter_contract_holds_only_what_server_code_calls() -> None:
    contract = [ROOT / "server/engine/adapter.py", ROOT / "server/content/content_model.py"]
    promised = {
        member.name
        for path in contract
        for node in _code(path).body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id == "Protocol" for base in node.bases)
        for member in node.body
        if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    called = {
        node.attr
        for path in (ROOT / "server").rglob("*.py")
        for node in ast.walk(_code(path))
        # Called on an adapter (`adapter.x`, `self.api.adapter.x`) or the content model's store.
        if isinstance(node, ast.Attribute)
        and (
            (isinstance(node.value, ast.Name) and node.value.id == "adapter")
            or (isinstance(node.value, ast.Attribute) and node.value.attr in {"adapter", "store"})
        )
    }
    assert len(promised) > 50
    assert sorted(promised - called) == []
