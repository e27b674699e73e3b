"""Tables of the real-image benchmark: per-image and mean PSNR/SSIM, best baseline, verdicts.

Scores are ``unifmir.metrics.evaluate_pair(..., "care")`` of each crop. Per image = the mean over
that image's crops; "mean" = the mean over all crops of the condition (n = number of crops). The
strongest classical baseline of a condition is the one with the highest mean PSNR (marked **\\***);
a bundle "beats the best baseline" when its mean PSNR exceeds the highest baseline mean PSNR by
the task's margin (issue 14: 2 dB denoise, 1 dB otherwise) AND its mean SSIM exceeds the highest
baseline mean SSIM (whichever baselines those are). Noise2Void (denoise) is reported beside the
classical baselines, compared on the crops it ran on, and never counted as classical.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["MARGIN_DB", "summarise", "markdown"]

MARGIN_DB = {"denoise": 2.0, "sr": 1.0, "isotropic": 1.0, "projection": 1.0, "volumetric": 1.0}


def _mean(xs):
    return float(np.mean(xs)) if xs else float("nan")


def _agg(scores: list[dict], images: list[str], crops: set[str] | None = None) -> dict[str, Any]:
    sel = [s for s in scores if crops is None or s["crop_id"] in crops]
    per = {}
    for im in images:
        xs = [s for s in sel if s["image"] == im]
        if xs:
            per[im] = {"psnr": _mean([s["psnr"] for s in xs]), "ssim": _mean([s["ssim"] for s in xs]), "n": len(xs)}
    return {"per_image": per, "psnr": _mean([s["psnr"] for s in sel]), "ssim": _mean([s["ssim"] for s in sel]),
            "n": len(sel)}


def summarise(task: str, conditions: list, records: list[dict], images: list[str]) -> dict[str, Any]:
    """Aggregate per-crop ``records`` (``method, kind, condition, image, crop_id, psnr, ssim``)."""
    out: dict[str, Any] = {"task": task, "margin_db": MARGIN_DB[task], "conditions": []}
    for cond in conditions:
        recs = [r for r in records if r["condition"] == cond.name]
        by_method: dict[str, list[dict]] = defaultdict(list)
        kinds: dict[str, str] = {}
        for r in recs:
            by_method[r["method"]].append(r)
            kinds[r["method"]] = r["kind"]
        rows = []
        for m, rs in by_method.items():
            row = {"method": m, "kind": kinds[m], **_agg(rs, images), "crops": [
                {k: r[k] for k in ("image", "crop_id", "psnr", "ssim", "extra") if k in r} for r in rs]}
            rows.append(row)
        base = [r for r in rows if r["kind"] == "baseline"]
        best_p = max(base, key=lambda r: r["psnr"]) if base else None
        best_s = max(base, key=lambda r: r["ssim"]) if base else None
        n2v = next((r for r in rows if r["kind"] == "n2v"), None)
        for r in rows:
            r["best_baseline"] = best_p is not None and r is best_p
            if r["kind"] != "bundle" or best_p is None:
                continue
            dp = r["psnr"] - best_p["psnr"]
            ds = r["ssim"] - best_s["ssim"]
            r["vs_best_baseline"] = {"psnr_baseline": best_p["method"], "ssim_baseline": best_s["method"],
                                     "dpsnr": dp, "dssim": ds,
                                     "passes": bool(dp >= MARGIN_DB[task] and ds > 0)}
            if n2v is not None:
                crops = {c["crop_id"] for c in n2v["crops"]}
                mine = _agg(by_method[r["method"]], images, crops)
                dpn, dsn = mine["psnr"] - n2v["psnr"], mine["ssim"] - n2v["ssim"]
                r["vs_n2v"] = {"n": n2v["n"], "psnr_same_crops": mine["psnr"], "ssim_same_crops": mine["ssim"],
                               "dpsnr": dpn, "dssim": dsn, "passes": bool(dpn > 0 and dsn > 0)}
        order = {"bundle": 0, "n2v": 1, "baseline": 2}
        rows.sort(key=lambda r: (order[r["kind"]], r["method"]))
        out["conditions"].append({"name": cond.name, "training_physics": cond.training, "params": _plain(cond.params),
                                  "hot_pixels": cond.hot_pixels, "rows": rows})
    return out


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _f(x: float, d: int) -> str:
    return "n/a" if x != x else f"{x:.{d}f}"


def markdown(task_summary: dict[str, Any], images: list[str], bundle_names: dict[str, str]) -> str:
    """One Markdown table per task: rows = bundles, N2V, baselines per condition."""
    t = task_summary
    ims = [im for im in images if any(im in r["per_image"] for c in t["conditions"] for r in c["rows"])]
    head = ["condition", "method"] + [f"{im} PSNR / SSIM" for im in ims] + [
        "mean PSNR / SSIM (n)", f"vs best baseline (>= {t['margin_db']:g} dB and higher SSIM)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in t["conditions"]:
        cname = c["name"] + (" *(training physics)*" if c["training_physics"] else "")
        for r in c["rows"]:
            label = r["method"]
            if r["kind"] == "bundle":
                label = f"**{bundle_names.get(r['method'], r['method'])}** (bundle)"
            elif r["kind"] == "n2v":
                label = "CAREamics N2V (self-supervised on the test volume)"
            if r["best_baseline"]:
                label += " **\\***"
            cells = []
            for im in ims:
                p = r["per_image"].get(im)
                cells.append(f"{_f(p['psnr'], 2)} / {_f(p['ssim'], 3)}" if p else "")
            mean = f"{_f(r['psnr'], 2)} / {_f(r['ssim'], 3)} ({r['n']})"
            verdict = ""
            if "vs_best_baseline" in r:
                v = r["vs_best_baseline"]
                verdict = (f"{'**yes**' if v['passes'] else 'no'}: {v['dpsnr']:+.2f} dB, {v['dssim']:+.3f} SSIM")
                if "vs_n2v" in r:
                    w = r["vs_n2v"]
                    verdict += (f"; vs N2V ({w['n']} crops): {'beats' if w['passes'] else 'loses'}, "
                                f"{w['dpsnr']:+.2f} dB, {w['dssim']:+.3f}")
            lines.append("| " + " | ".join([cname, label, *cells, mean, verdict]) + " |")
    return "\n".join(lines)
