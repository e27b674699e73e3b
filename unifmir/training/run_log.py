"""Run logging: a CSV of the curves, a PNG plot, and a tqdm progress bar.

Kept apart from the loop and from checkpointing: the loop hands rows to :class:`TrainLogger`
and updates :class:`Progress`. Rows are plain dicts; ``kind`` is ``train`` (mean training loss
since the previous row) or ``val`` (a validation). The CSV is rewritten atomically on each
:meth:`TrainLogger.flush`, so it always matches the last resume point after an interruption.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from unifmir._atomic import atomic_path

__all__ = ["TrainLogger", "Progress", "plot_history"]

BASE_COLUMNS = ("step", "kind", "task", "lr", "loss", "val_loss", "val_psnr", "val_ssim", "val_nrmse", "time_s")


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.8g}"
    return str(v)


class TrainLogger:
    """Collect history rows; write ``log.csv`` and ``curves.png`` in the run directory."""

    def __init__(self, csv_path: str | Path, plot_path: str | Path | None, extra_columns: Sequence[str] = ()) -> None:
        self.csv_path = Path(csv_path)
        self.plot_path = Path(plot_path) if plot_path is not None else None
        self.columns = list(BASE_COLUMNS) + [c for c in extra_columns if c not in BASE_COLUMNS]
        self.rows: list[dict[str, Any]] = []

    def log(self, row: dict[str, Any]) -> None:
        """Append one row (unknown keys get their own column)."""
        for k in row:
            if k not in self.columns:
                self.columns.append(k)
        self.rows.append(dict(row))

    def set_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Replace the history (used when resuming: the rows up to the resume step)."""
        self.rows = []
        for r in rows:
            self.log(r)

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows:
            w.writerow([_fmt(r.get(c)) for c in self.columns])
        return buf.getvalue()

    def flush(self, plot: bool = True) -> None:
        """Rewrite the CSV (atomically) and, if asked, the plot."""
        with atomic_path(self.csv_path, overwrite=True) as tmp:
            tmp.write_text(self.csv_text())
        if plot and self.plot_path is not None:
            plot_history(self.rows, self.plot_path)


def plot_history(rows: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Plot training loss, validation loss and validation PSNR against the step to a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train = [r for r in rows if r.get("kind") == "train" and r.get("loss") is not None]
    val = [r for r in rows if r.get("kind") == "val"]
    if not train and not val:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    if train:
        ax1.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    vl = [r for r in val if r.get("val_loss") is not None]
    if vl:
        ax1.plot([r["step"] for r in vl], [r["val_loss"] for r in vl], "o-", label="val loss", ms=3)
    ax1.set_xlabel("step")
    ax1.set_ylabel("L1 loss")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.grid(alpha=0.3)
    vp = [r for r in val if r.get("val_psnr") is not None]
    if vp:
        ax2.plot([r["step"] for r in vp], [r["val_psnr"] for r in vp], "o-", color="C2", ms=3, label="val PSNR")
        ax2.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("PSNR (dB)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path


class Progress:
    """A tqdm bar showing the step, the running loss and the last validation PSNR."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)
        self.postfix: dict[str, str] = {}

    def update(self, n: int = 1, **postfix: float | str | None) -> None:
        if self.bar is None:
            return
        for k, v in postfix.items():
            if v is not None:
                self.postfix[k] = f"{v:.4g}" if isinstance(v, float) else str(v)
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(n)

    def write(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
