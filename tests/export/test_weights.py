"""`unifmir.export.weights`: the pytorch_state_dict architecture file loads without `unifmir`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from unifmir.export import describe as D
from unifmir.export import weights

from .export_testlib import small_network


def test_architecture_file_is_self_contained(tmp_path: Path) -> None:
    """The pytorch_state_dict architecture loads with `unifmir` not importable, same numbers."""
    task = "denoise"
    net = small_network(task)
    layout = D.layout_for(task, window=8, halo=16)
    module = weights.build_export_module(net, task, layout)
    kwargs = weights.architecture_kwargs(net, task, layout)
    weights.write_architecture(tmp_path / weights.ARCHITECTURE_FILE, kwargs)
    weights.write_state_dict(tmp_path / "w.pt", module)
    x = torch.rand(1, 1, 6, 40, 40)
    with torch.no_grad():
        np.save(tmp_path / "x.npy", x.numpy())
        np.save(tmp_path / "y.npy", module(x).numpy())
    import yaml

    (tmp_path / "kw.yaml").write_text(yaml.safe_dump(kwargs))
    script = textwrap.dedent(f"""
        import sys, importlib.util
        sys.modules["unifmir"] = None  # any `import unifmir` now fails
        import numpy as np, torch, yaml
        spec = importlib.util.spec_from_file_location("arch", {str(tmp_path / weights.ARCHITECTURE_FILE)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        kw = yaml.safe_load(open({str(tmp_path / "kw.yaml")!r}))
        m = mod.{weights.ARCHITECTURE_CALLABLE}(**kw)
        m.load_state_dict(torch.load({str(tmp_path / "w.pt")!r}, weights_only=True))
        with torch.no_grad():
            y = m.eval()(torch.from_numpy(np.load({str(tmp_path / "x.npy")!r})))
        d = float((y - torch.from_numpy(np.load({str(tmp_path / "y.npy")!r}))).abs().max())
        assert d < 1e-5, d
        assert not any(k == "unifmir" or k.startswith("unifmir.") for k, v in sys.modules.items() if v is not None)
        print("OK", d)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]
