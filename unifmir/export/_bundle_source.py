"""Generate a self-contained Python architecture file from the package's own module sources.

The ``pytorch_state_dict`` weights of a bundle need the architecture as Python source, and the
consumer (bioimageio.core, ilastik, BiaPy...) must not need ``unifmir`` installed. We collect the
transitive closure of ``unifmir`` modules the exported network uses (found by parsing their
imports), check that everything else they import is an allowed third-party module, and write one
file that embeds each module's source verbatim and executes it into a *private* package
(``_unifmir_bundled_<hash>``) registered in ``sys.modules``. Names therefore never collide across
modules, relative and absolute imports keep working (``from unifmir.x import`` is rewritten to the
private package), and an installed ``unifmir`` (any version) is never shadowed or used.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["ALLOWED_IMPORTS", "module_closure", "render_architecture_file"]

ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "__future__", "torch", "math", "typing", "typing_extensions", "dataclasses", "collections",
        "functools", "itertools", "warnings", "numbers", "enum", "abc", "copy", "pydantic", "numpy",
    }
)
"""Top-level modules the inlined code may import besides ``unifmir`` itself (pydantic ships with
every bioimage.io runtime, since bioimageio.spec is built on it; so does numpy)."""

_ROOT = "unifmir"


def _source_of(mod: str) -> str:
    spec = importlib.util.find_spec(mod)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"cannot find the source of module {mod!r}")
    return Path(spec.origin).read_text(encoding="utf-8")


def _is_package(mod: str) -> bool:
    spec = importlib.util.find_spec(mod)
    return bool(spec and spec.submodule_search_locations is not None)


def _imports(mod: str, source: str) -> tuple[set[str], set[str]]:
    """(unifmir modules, other top-level modules) imported anywhere in ``source``."""
    tree = ast.parse(source)
    pkg = mod if _is_package(mod) else mod.rpartition(".")[0]
    inner: set[str] = set()
    outer: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (inner if alias.name.split(".")[0] == _ROOT else outer).add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = pkg.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != _ROOT:
                outer.add(target)
                continue
            # "from pkg import submodule" imports a module; "from mod import name" a name
            for alias in node.names:
                cand = f"{target}.{alias.name}"
                if importlib.util.find_spec(target) is not None and _is_package(target) and importlib.util.find_spec(cand):
                    inner.add(cand)
            inner.add(target)
    outer = {o.split(".")[0] for o in outer if o}
    return inner, outer


def module_closure(roots: Iterable[str]) -> list[str]:
    """Modules (dependencies first) needed by ``roots``; raises if a disallowed import appears."""
    order: list[str] = []
    seen: set[str] = set()
    bad: list[str] = []

    def visit(mod: str, stack: tuple[str, ...]) -> None:
        if mod in seen or mod == _ROOT:
            return
        seen.add(mod)
        src = _source_of(mod)
        inner, outer = _imports(mod, src)
        for o in sorted(outer - ALLOWED_IMPORTS):
            bad.append(f"{mod} imports {o}")
        for dep in sorted(inner):
            if dep not in stack:
                visit(dep, stack + (mod,))
        order.append(mod)

    for r in roots:
        visit(r, ())
    if bad:
        raise ValueError(
            "the architecture cannot be made self-contained: " + "; ".join(bad)
            + f" (allowed: {', '.join(sorted(ALLOWED_IMPORTS))})"
        )
    return order


_IMPORT_RE = re.compile(r"^(\s*)(from|import)\s+unifmir(?=[\s.])", re.MULTILINE)


def render_architecture_file(roots: Sequence[str], builder_source: str, header: str = "") -> str:
    """Render the self-contained file: embedded module sources + ``builder_source`` (the callable).

    ``builder_source`` may refer to the embedded modules with ``_mod("model.single")`` etc.
    (names relative to ``unifmir``).
    """
    mods = module_closure(roots)
    sources = {m: _source_of(m) for m in mods}
    digest = hashlib.sha256("".join(f"{m}\n{s}" for m, s in sources.items()).encode()).hexdigest()[:12]
    private = f"_unifmir_bundled_{digest}"
    parts = [
        '"""Self-contained UniFMIR network architecture for bioimage.io `pytorch_state_dict` weights.',
        "",
        "Generated by `unifmir export` from the unifmir package sources (embedded verbatim below and",
        f"executed into the private package `{private}`); `unifmir` itself is not needed and never",
        "imported. Requires torch (and pydantic, part of every bioimage.io runtime).",
        header,
        '"""',
        "",
        "import linecache as _linecache",
        "import sys as _sys",
        "import types as _types",
        "",
        f"_PKG = {private!r}",
        "_SOURCES = {}",
        "_PACKAGES = " + repr(sorted({m for m in mods if _is_package(m)} | {".".join(m.split(".")[:i]) for m in mods for i in range(1, len(m.split(".")))})),
        "",
    ]
    for m in mods:
        src = _IMPORT_RE.sub(lambda mt: f"{mt.group(1)}{mt.group(2)} {private}", sources[m])
        parts.append(f"_SOURCES[{m!r}] = {src!r}")
    parts += [
        "",
        "",
        "def _private(name):",
        "    return _PKG + name[len('unifmir'):]",
        "",
        "",
        "def _install():",
        "    if _PKG in _sys.modules:",
        "        return",
        "    for pkg in _PACKAGES:",
        "        mod = _types.ModuleType(_private(pkg))",
        "        mod.__path__ = []",
        "        mod.__package__ = _private(pkg)",
        "        _sys.modules[_private(pkg)] = mod",
        "    for name, src in _SOURCES.items():",
        "        full = _private(name)",
        "        is_pkg = name in _PACKAGES",
        "        mod = _sys.modules.get(full) if is_pkg else None",
        "        if mod is None:",
        "            mod = _types.ModuleType(full)",
        "            _sys.modules[full] = mod",
        "        mod.__package__ = full if is_pkg else full.rpartition('.')[0]",
        "        filename = '<' + full + '>'",
        "        mod.__file__ = filename",
        "        _linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)",
        "        exec(compile(src, filename, 'exec'), mod.__dict__)",
        "        parent, _, child = full.rpartition('.')",
        "        if parent in _sys.modules:",
        "            setattr(_sys.modules[parent], child, mod)",
        "",
        "",
        "def _mod(name):",
        "    _install()",
        "    return _sys.modules[_private('unifmir.' + name if name else 'unifmir')]",
        "",
        "",
        builder_source.strip(),
        "",
    ]
    return "\n".join(parts)


def _self_test() -> None:  # pragma: no cover - manual debugging aid
    print(module_closure(sys.argv[1:]))
