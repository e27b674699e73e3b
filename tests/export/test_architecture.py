"""The architecture file of the ``pytorch_state_dict`` weights: plain torch-only source, exact kwargs.

For every task (and the 2D denoise variant): the rendered file imports only torch and the
standard library, runs no ``exec``/``eval``/``compile``, defines every name once, renders the same
text twice and as written; its kwargs are the network's constructor keywords
(``single_task_kwargs``) and the task module's; and, in a fresh interpreter where ``unifmir``
cannot be imported, it builds the module, loads the export module's state_dict strictly and
reproduces its output.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import unifmir
from unifmir.export import describe as D
from unifmir.export import weights
from unifmir.export._architecture import allowed_import
from unifmir.model.factory import single_task_kwargs
from unifmir.predict import modules as pm
from unifmir.tasks import TASK_NAMES

VARIANTS = [(t, False) for t in TASK_NAMES] + [("denoise", True)]
"""(task, two_d): every task, plus the single-slice denoise variant."""

INPUTS = {  # bioimage.io input shapes (b, c, [z,] y, x), small and off the window grid where allowed
    ("sr", False): (1, 1, 20, 27),
    ("denoise", False): (1, 1, 6, 20, 27),
    ("isotropic", False): (1, 1, 4, 16, 21),
    ("projection", False): (1, 1, 50, 20, 27),
    ("volumetric", False): (1, 1, 1, 88, 99),
    ("denoise", True): (1, 1, 20, 27),
}

REPO_PACKAGE = str(Path(unifmir.__file__).resolve().parent)


def _net(task: str, two_d: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg: Any = {"preset": "small", "in_chans": 1} if two_d else "small"
    if task == "volumetric":  # the small preset keeps UNetA's 19 M reference parameters: narrow it
        cfg = {"preset": "small", "unet_stem": 32, "unet_widths": [8, 16, 16]}
    return unifmir.build_model(task, cfg).eval()


def _case(task: str, two_d: bool) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, Any]]:
    net = _net(task, two_d)
    layout = D.layout_for(task, window=8, halo=16, two_d=two_d)
    module = weights.build_export_module(net, task, layout, two_d=two_d)
    return net, module, weights.architecture_kwargs(net, task, layout, two_d=two_d)


def _id(v: tuple[str, bool]) -> str:
    return v[0] + ("-2d" if v[1] else "")


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_file_is_plain_torch_only_source(variant: tuple[str, bool], tmp_path: Path) -> None:
    task, two_d = variant
    _, _, kwargs = _case(task, two_d)
    text = weights.render_architecture(kwargs)
    assert weights.render_architecture(kwargs) == text  # deterministic
    path = weights.write_architecture(tmp_path / weights.ARCHITECTURE_FILE, kwargs)
    assert path.read_bytes() == text.encode("utf-8")
    assert "GENERATED" in text.splitlines()[2] and unifmir.__version__ in text.splitlines()[2]
    assert str(Path.home()) not in text and REPO_PACKAGE not in text  # no machine paths
    tree = ast.parse(text)
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and all(allowed_import(m) for m in imported), imported
    assert not any(m.split(".")[0] in ("unifmir", "numpy", "pydantic") for m in imported)
    called = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not called & {"exec", "eval", "compile", "__import__"}
    defined = [t.id for n in tree.body for t in (n.targets if isinstance(n, ast.Assign) else [getattr(n, "target", None)])
               if isinstance(t, ast.Name)] + [n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    assert len(defined) == len(set(defined)), sorted(n for n in defined if defined.count(n) > 1)
    assert kwargs["network"] in defined and kwargs["task_module"] in defined and weights.ARCHITECTURE_CALLABLE in defined
    # only what this network needs: the other networks and task modules are left out
    others = {"SwinIRNet", "ProjectionNet", "VolumetricNet", *(c.__name__ for c in pm.TASK_MODULES.values())}
    others -= {kwargs["network"], kwargs["task_module"], "SwinIRNet" if task == "projection" else ""}
    assert not others & set(defined)
    assert ("ENLCN" in defined) == (task == "projection") and ("UNetA" in defined) == (task == "volumetric")


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_kwargs_are_the_constructor_arguments(variant: tuple[str, bool]) -> None:
    task, two_d = variant
    net, module, kwargs = _case(task, two_d)
    assert yaml.safe_load(yaml.safe_dump(kwargs)) == kwargs  # plain YAML values (safe_dump refuses tuples)
    cls, net_kwargs = single_task_kwargs(task, net.config)
    assert kwargs["network"] == cls.__name__ == type(net).__name__
    assert kwargs["network_kwargs"] == json.loads(json.dumps(net_kwargs))  # tuples as lists, else equal
    inner = module.inner
    assert kwargs["task_module"] == type(inner).__name__ == ("SuperRes2D" if two_d else pm.TASK_MODULES[task].__name__)
    params = set(inspect.signature(type(inner).__init__).parameters) - {"self", "net"}
    assert set(kwargs["task_module_kwargs"]) == params
    rebuilt = type(inner)(net, **kwargs["task_module_kwargs"])
    for attr in ("task", "scale", "align", "local_in_channels", "chunk", "context", "factor", "depth", "lenslets"):
        assert getattr(rebuilt, attr, None) == getattr(inner, attr, None), attr
    if not two_d:
        tm = pm.build_task_module(net, task)
        assert type(tm) is type(inner) and pm.task_module_kwargs(type(tm), net, task) == kwargs["task_module_kwargs"]
    assert kwargs["drop_singleton_z"] == module.drop_singleton_z
    assert kwargs["vcd_normalize"] == module.vcd_normalize
    assert all(k.startswith("inner.net.") for k in module.state_dict())


def test_loads_without_unifmir_and_reproduces_the_export_module(tmp_path: Path) -> None:
    """One fresh interpreter for all variants: unifmir blocked, the files build and match."""
    cases = []
    for task, two_d in VARIANTS:
        _, module, kwargs = _case(task, two_d)
        d = tmp_path / _id((task, two_d))
        d.mkdir()
        weights.write_architecture(d / weights.ARCHITECTURE_FILE, kwargs)
        weights.write_state_dict(d / "weights.pt", module)
        x = torch.rand(INPUTS[(task, two_d)], generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            torch.save({"x": x, "y": module(x)}, d / "io.pt")
        (d / "kwargs.json").write_text(json.dumps(kwargs))
        cases.append(str(d))
    blocked = tmp_path / "blocked"
    (blocked / "unifmir").mkdir(parents=True)
    (blocked / "unifmir" / "__init__.py").write_text("raise ImportError('unifmir must not be imported')\n")
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        sys.path.insert(0, {str(blocked)!r})
        import torch
        torch.set_num_threads(1)
        for i, d in enumerate({cases!r}):
            spec = importlib.util.spec_from_file_location(f"arch{{i}}", d + "/{weights.ARCHITECTURE_FILE}")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            m = mod.{weights.ARCHITECTURE_CALLABLE}(**json.load(open(d + "/kwargs.json")))
            m.load_state_dict(torch.load(d + "/weights.pt", weights_only=True), strict=True)
            io = torch.load(d + "/io.pt", weights_only=True)
            with torch.no_grad():
                diff = float((m(io["x"]) - io["y"]).abs().max())
            assert diff <= 1e-6, (d, diff)
            print("OK", d, diff)
        loaded = [n for n, v in sys.modules.items() if n.split(".")[0] == "unifmir"
                  or str(getattr(v, "__file__", "") or "").startswith({REPO_PACKAGE!r})]
        assert not loaded, loaded
    """)
    res = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.count("OK") == len(VARIANTS), res.stdout


def test_blocked_unifmir_really_blocks(tmp_path: Path) -> None:
    """The blocking used above works: with it, `import unifmir` fails in the fresh interpreter."""
    (tmp_path / "unifmir").mkdir()
    (tmp_path / "unifmir" / "__init__.py").write_text("raise ImportError('blocked')\n")
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import unifmir"
    res = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "blocked" in res.stderr


def test_render_refuses_code_that_is_not_torch_only() -> None:
    """A definition that needs the task registry (not torch-only) cannot be rendered."""
    from unifmir.export import _architecture

    with pytest.raises(ValueError, match="get_task"):
        _architecture.render(["build_task_module"], "0")
    with pytest.raises(ValueError, match="not defined"):
        _architecture.render(["NoSuchNetwork"], "0")
