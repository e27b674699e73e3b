"""One lazy-import scheme for the package ``__init__`` files (PEP 562 ``__getattr__``).

A package lists its public names as imports inside ``if TYPE_CHECKING:``, which is what type
checkers and IDEs read, and names them in a literal ``__all__``; at run time nothing is imported
until a name is first used::

    from typing import TYPE_CHECKING

    from unifmir._lazy import attach

    if TYPE_CHECKING:
        from .io import read_image, write_image

    __all__ = ["read_image", "write_image"]

    if not TYPE_CHECKING:  # checkers see the imports above, not a catch-all __getattr__
        __getattr__, __dir__ = attach(__name__, __file__, __all__)

:func:`attach` reads the ``TYPE_CHECKING`` imports from the ``__init__`` source (so the import
lines are the only table of where each name lives) and returns the module's ``__getattr__`` and
``__dir__``. This keeps ``import unifmir`` cheap (no torch, no pydantic) while ``unifmir.build_model``
and ``from unifmir.data import read_image`` work as usual.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["attach", "lazy_table"]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def lazy_table(package: str, init_file: str) -> dict[str, tuple[str, str]]:
    """``public name -> (absolute module, attribute)`` from the ``if TYPE_CHECKING:`` imports of
    ``init_file`` (the ``__init__.py`` of ``package``)."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    table: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for stmt in node.body:
            if not isinstance(stmt, ast.ImportFrom) or stmt.module is None:
                raise ValueError(f"{init_file}:{stmt.lineno}: only `from module import name` lines belong in "
                                 "the TYPE_CHECKING block of a lazy package")
            base = package.rsplit(".", stmt.level - 1)[0] if stmt.level > 1 else package
            module = f"{base}.{stmt.module}" if stmt.level else stmt.module
            for alias in stmt.names:
                table[alias.asname or alias.name] = (module, alias.name)
    return table


def attach(
    package: str, init_file: str, public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``public`` is imported on first use
    from where the ``TYPE_CHECKING`` block of ``init_file`` imports it, then cached in the module."""
    table = lazy_table(package, init_file)
    missing = [n for n in public if n not in table and n != "__version__"]
    if missing:
        raise ImportError(f"{package}.__all__ names {missing}, which its TYPE_CHECKING block does not import")

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(target[0]), target[1])
        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
