"""Render the architecture file of the ``pytorch_state_dict`` weights: the network's own source.

The file is plain Python copied from the package, nothing else: for each module of
:data:`SOURCE_MODULES` (in this order, dependencies first) the top-level definitions that the
exported module needs, verbatim (docstrings and comments included) and in their order in that
module. What is needed is found from the names the definitions use, starting at the network
class, the task-module class and the bundle callable ``UniFMIRBioimage``. Imports between these
modules are dropped (the definitions live in the same file); the others, which must be torch or
the standard library, are merged into one import block. Rendering fails when a needed definition
uses a name defined elsewhere in ``unifmir`` (``unifmir.tasks``, pydantic configs...) or when two
modules define the same name. The output depends only on these sources and ``unifmir.__version__``.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import symtable
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

__all__ = ["SOURCE_MODULES", "CALLABLE", "render", "allowed_import"]

SOURCE_MODULES: tuple[str, ...] = (
    "unifmir.model.swin",
    "unifmir.model.enlcn",
    "unifmir.model.unet",
    "unifmir.model.single",
    "unifmir.predict.modules",
    "unifmir.export._adapter",
)
"""Modules the architecture file copies from, dependencies first."""

CALLABLE = "UniFMIRBioimage"
"""The bundle callable (defined in :mod:`unifmir.export._adapter`)."""

_PACKAGE = "unifmir"


def allowed_import(module: str) -> bool:
    """Whether the architecture file may import ``module``: torch or the standard library."""
    top = module.split(".")[0]
    return top == "torch" or top in sys.stdlib_module_names


@dataclass
class _Def:
    """One top-level definition: the names it binds, its verbatim lines, the global names it uses."""

    module: str
    names: tuple[str, ...]
    text: str
    uses: frozenset[str]


@dataclass
class _Source:
    """One parsed module of :data:`SOURCE_MODULES`."""

    name: str
    summary: str
    defs: list[_Def] = field(default_factory=list)
    imports: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)
    """bound name -> (module, imported name or None for ``import module``, ``as`` name)"""
    internal: dict[str, str] = field(default_factory=dict)
    """bound name -> the unifmir module it is imported from"""


def _global_uses(text: str) -> frozenset[str]:
    """Global names that ``text`` (one top-level statement) reads, at any depth."""
    names: set[str] = set()

    def walk(table: symtable.SymbolTable, top: bool) -> None:
        for sym in table.get_symbols():
            if sym.is_referenced() and sym.is_global() and not (top and sym.is_assigned()):
                names.add(sym.get_name())
        for child in table.get_children():
            walk(child, False)

    walk(symtable.symtable(text, "<definition>", "exec"), True)
    return frozenset(names)


def _bound_names(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    else:
        raise ValueError(f"unsupported top-level statement at line {node.lineno}: only definitions are copied")
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    if len(names) != len(targets):
        raise ValueError(f"unsupported top-level assignment at line {node.lineno}: only plain names are copied")
    return tuple(names)


def _parse(module: str) -> _Source:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of {module}")
    source = Path(spec.origin).read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    out = _Source(module, doc.strip().splitlines()[0] if doc.strip() else "")
    package = module.rpartition(".")[0]
    body = tree.body
    for i, node in enumerate(body):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == _PACKAGE:
                    out.internal[a.asname or a.name.split(".")[0]] = a.name
                else:
                    out.imports[a.asname or a.name.split(".")[0]] = (a.name, None, a.asname)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for a in node.names:
                if target.split(".")[0] == _PACKAGE:
                    out.internal[a.asname or a.name] = target
                elif target != "__future__":
                    out.imports[a.asname or a.name] = (target, a.name, a.asname)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)):
            names = _bound_names(node)
            if names == ("__all__",):
                continue
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
            while start > 0 and lines[start - 1].lstrip().startswith("#"):
                start -= 1  # comment lines right above the definition
            end = node.end_lineno or node.lineno
            nxt = body[i + 1] if i + 1 < len(body) else None
            if (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                end = nxt.end_lineno or end  # the attribute docstring below a constant
            text = "".join(lines[start:end]).rstrip() + "\n"
            out.defs.append(_Def(module, names, text, _global_uses(text)))
    return out


def _check_unique(sources: Iterable[_Source]) -> dict[str, _Def]:
    """Every name defined once across the modules; imports agree where they share a name."""
    defs: dict[str, _Def] = {}
    imports: dict[str, tuple[tuple[str, str | None, str | None], str]] = {}
    clashes: list[str] = []
    for src in sources:
        for d in src.defs:
            for n in d.names:
                if n in defs and defs[n].module != src.name:
                    clashes.append(f"{n!r} is defined in {defs[n].module} and {src.name}")
                defs.setdefault(n, d)
        for n, imp in src.imports.items():
            if n in imports and imports[n][0] != imp:
                clashes.append(f"{n!r} is imported differently in {imports[n][1]} and {src.name}")
            imports.setdefault(n, (imp, src.name))
    for n, (_, mod) in imports.items():
        if n in defs:
            clashes.append(f"{n!r} is imported in {mod} and defined in {defs[n].module}")
    if clashes:
        raise ValueError("the architecture file would define names twice: " + "; ".join(clashes))
    return defs


def _import_block(imports: set[tuple[str, str | None, str | None]]) -> list[str]:
    """Import lines: standard library, then torch; ``import`` before ``from`` (isort's order)."""
    groups: list[list[str]] = []
    for stdlib in (True, False):
        plain: dict[str, str] = {}
        froms: dict[str, list[str]] = {}
        for mod, name, asname in imports:
            if (mod.split(".")[0] in sys.stdlib_module_names) != stdlib:
                continue
            alias = f" as {asname}" if asname else ""
            if name is None:
                plain[f"{mod}{alias}"] = mod
            else:
                froms.setdefault(mod, []).append(name + alias)
        stmts = [((0, mod, text), f"import {text}") for text, mod in plain.items()]
        stmts += [((1, mod, ""), f"from {mod} import {', '.join(sorted(names))}") for mod, names in froms.items()]
        if stmts:
            groups.append([line for _, line in sorted(stmts)])
    return [line for i, g in enumerate(groups) for line in ([""] if i else []) + g]


def render(roots: Iterable[str], version: str) -> str:
    """The architecture file holding ``roots`` (top-level names) and everything they use."""
    sources = [_parse(m) for m in SOURCE_MODULES]
    by_name = {s.name: s for s in sources}
    defs = _check_unique(sources)
    kept: set[int] = set()
    imports: set[tuple[str, str | None, str | None]] = set()
    errors: list[str] = []
    todo: list[tuple[str, _Def | None]] = [(r, None) for r in roots]
    while todo:
        name, user = todo.pop()
        d = defs.get(name)
        if d is not None:
            if id(d) not in kept:
                kept.add(id(d))
                for u in sorted(d.uses - set(d.names)):
                    todo.append((u, d))
            continue
        if user is None:
            errors.append(f"{name!r} is not defined in {', '.join(SOURCE_MODULES)}")
            continue
        src = by_name[user.module]
        if name in src.imports:
            imp = src.imports[name]
            if not allowed_import(imp[0]):
                errors.append(f"{'/'.join(user.names)} ({user.module}) uses {name!r} from {imp[0]}, "
                              "which is neither torch nor the standard library")
            imports.add(imp)
        elif name in src.internal:
            errors.append(f"{'/'.join(user.names)} ({user.module}) uses {name!r} from {src.internal[name]}, "
                          f"which is not part of the architecture file (only {', '.join(SOURCE_MODULES)})")
        elif not hasattr(builtins, name):
            errors.append(f"{'/'.join(user.names)} ({user.module}) uses the undefined name {name!r}")
    for src in sources:
        for d in src.defs:
            if id(d) in kept:
                for node in ast.walk(ast.parse(d.text)):
                    mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                        [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                    errors += [f"{'/'.join(d.names)} ({d.module}) imports {m}" for m in mods if not allowed_import(m)]
    if errors:
        raise ValueError("cannot render a torch-only architecture file: " + "; ".join(sorted(set(errors))))

    parts = [
        "# UniFMIR network architecture of a bioimage.io bundle's `pytorch_state_dict` weights.",
        "#",
        f"# GENERATED by unifmir {version} (`unifmir export`): do not edit. Each section is copied",
        "# verbatim from the unifmir module it names, keeping only the classes and functions this",
        "# network uses; imports between unifmir modules are left out (everything is in this file).",
        "# Needs only torch and the Python standard library. The model is",
        f"# `{CALLABLE}(**kwargs)` with the kwargs of rdf.yaml",
        "# (weights: pytorch_state_dict: architecture: kwargs); its state_dict keys are `inner.net.*`.",
        "",
        "from __future__ import annotations",
        "",
    ]
    parts += _import_block(imports)
    for src in sources:
        chosen = [d for d in src.defs if id(d) in kept]
        if not chosen:
            continue
        parts += ["", "", f"# ---- {src.name}: {src.summary}"]
        for i, d in enumerate(chosen):
            parts += ([""] if i == 0 else ["", ""]) + [d.text.rstrip("\n")]
    return "\n".join(parts) + "\n"
