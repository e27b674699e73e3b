"""The task registry: facts as data, read everywhere, and no task-name comparisons elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import unifmir
from unifmir.tasks import TASK_NAMES, TASKS, get_task, other_task

PACKAGE = Path(unifmir.__file__).parent


def test_other_task_compares_known_tasks_only() -> None:
    assert other_task("sr", "denoise") and other_task(TASKS["sr"], "denoise")
    assert not other_task("sr", "sr") and not other_task("sr", TASKS["sr"])
    assert not other_task(None, "sr") and not other_task("sr", None) and not other_task(None, None)


def test_every_task_names_its_module_and_generator() -> None:
    from unifmir.data.forward import GENERATORS
    from unifmir.predict.modules import MODULE_CLASSES, TASK_MODULES

    assert set(GENERATORS) == set(TASKS) == set(TASK_MODULES)
    for spec in TASKS.values():
        assert TASK_MODULES[spec.name] is MODULE_CLASSES[spec.task_module]
        if spec.task_module_2d is not None:  # only a context task has a single-slice 2D variant
            assert spec.context_slices > 1 and spec.task_module_2d in MODULE_CLASSES
            assert spec.is_2d_variant(1) and not spec.is_2d_variant(spec.context_slices)
        else:
            assert not spec.is_2d_variant(1)
    assert GENERATORS["volumetric"].forward.__name__ == "lightfield_forward"


def test_output_text_uses_only_the_documented_fields() -> None:
    for spec in TASKS.values():
        text = spec.output_text.format(same_size="SAME", z_up=3, z_out=7)
        assert text and "{" not in text


def test_min_depth_is_checked_for_user_stacks() -> None:
    from unifmir.predict.api import check_input

    spec = get_task("isotropic")
    assert spec.min_depth == 2
    with pytest.raises(ValueError, match="task 'isotropic' needs at least 2 z-slices, got 1"):
        check_input((1, 32, 32), spec)
    check_input((2, 32, 32), spec)


def _task_name_comparisons(path: Path) -> list[str]:
    """``x == "sr"`` / ``x != "denoise"`` / ``x in ("sr", ...)`` with a task name as a literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            literals = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            if any(isinstance(e, ast.Constant) and e.value in TASK_NAMES for e in literals):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_task_name_comparison_outside_the_registry() -> None:
    found = [hit for p in sorted(PACKAGE.rglob("*.py")) if p.name != "tasks.py" or p.parent != PACKAGE
             for hit in _task_name_comparisons(p)]
    assert found == [], f"task-name comparisons outside unifmir/tasks.py (make them TaskSpec data): {found}"
