"""What each DVC stage's code is: the project files its module imports (transitively) or
reads (SQL, model configs, templates), computed from the source with `ast`.

- `import a.b` and `from a.b import c` name the module `a.b` (or `a.b.c` where `c` is a
  module). A package's `__init__.py` runs whenever something below it is imported, so it
  counts then too, unless it only holds a docstring and constant assignments (its names
  matter only to a module that imports them, which names the package) or there is none
  (a namespace package, such as `stages/`).
- Imports under `if TYPE_CHECKING:` never run and do not count.
- A module reads a resource (a file of the package that is not Python) when a string
  literal in it is the resource's file name, or the name of a folder holding resources
  (`model_configs`), the module's own package's folder first.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tests.conftest import REPO_ROOT

SOURCE_ROOT = REPO_ROOT / "src"
PACKAGE = "social_reward"
PACKAGE_DIR = SOURCE_ROOT / PACKAGE
STAGES_PACKAGE = f"{PACKAGE}.stages"
CONFIG_PACKAGE = f"{PACKAGE}.config"


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {
        module_name(path): path
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


@cache
def resources() -> tuple[Path, ...]:
    """Every file of the package that is not Python: SQL, model configs, templates."""
    return tuple(
        path
        for path in sorted(PACKAGE_DIR.rglob("*"))
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST):
    """Every node, leaving out the bodies of `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _resolve(module: str, level: int, importer: str) -> str:
    if not level:
        return module
    package = importer if modules()[importer].name == "__init__.py" else importer.rsplit(".", 1)[0]
    base = package.rsplit(".", level - 1)[0] if level > 1 else package
    return f"{base}.{module}" if module else base


@dataclass(frozen=True)
class ModuleFacts:
    imports: frozenset[str]  # project modules it names
    literals: frozenset[str] = field(default_factory=frozenset)  # its string constants


@cache
def facts(name: str) -> ModuleFacts:
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    known = modules()
    imported: set[str] = set()
    literals: set[str] = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", node.level, name)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:
                    imported.add(submodule)
                elif target in known:
                    imported.add(target)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            literals.add(node.value)
    return ModuleFacts(frozenset(imported), frozenset(literals))


def _defines_only_constants(path: Path) -> bool:
    """An `__init__.py` with a docstring and constant assignments at most: nothing runs."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for number, statement in enumerate(body):
        if number == 0 and isinstance(statement, ast.Expr):
            continue  # the docstring
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            continue
        return False
    return True


def _parents(name: str) -> list[str]:
    """The packages whose `__init__.py` runs when `name` is imported, outermost first."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


@cache
def import_closure(name: str) -> frozenset[str]:
    """`name` and every project module that importing it runs."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(facts(current).imports)
        pending.extend(
            parent
            for parent in _parents(current)
            # a namespace package (no __init__.py) runs nothing
            if parent in modules() and not _defines_only_constants(modules()[parent])
        )
    return frozenset(seen)


def resources_read(name: str) -> frozenset[Path]:
    """The resource files module `name` names by a string literal (see the module doc)."""
    literals = facts(name).literals
    own_folder = modules()[name].parent
    read: set[Path] = set()
    for literal in literals:
        by_file = [path for path in resources() if path.name == literal]
        by_folder = [path for path in resources() if path.parent.name == literal]
        matched = by_file or by_folder
        own = [path for path in matched if path.is_relative_to(own_folder)]
        read.update(own or matched)
    return frozenset(read)


def code_files(name: str) -> frozenset[Path]:
    """Every project file importing module `name` runs or reads, relative to the repo root."""
    files: set[Path] = set()
    for module in import_closure(name):
        files.add(modules()[module])
        files.update(resources_read(module))
    return frozenset(path.relative_to(REPO_ROOT) for path in files)


def stage_modules() -> dict[str, str]:
    """The stage modules by stage name (`social_reward.stages.<name>`)."""
    prefix = f"{STAGES_PACKAGE}."
    return {name.removeprefix(prefix): name for name in modules() if name.startswith(prefix)}


def sections_read(name: str) -> frozenset[str]:
    """The params.yaml sections whose configuration module importing `name` runs."""
    prefix = f"{CONFIG_PACKAGE}."
    return frozenset(
        module.removeprefix(prefix) for module in import_closure(name) if module.startswith(prefix)
    )
