"""Citations used in bundle metadata (papers whose facts or data the models rely on)."""

from __future__ import annotations

CITATIONS: dict[str, dict[str, str]] = {
    "unifmir": {
        "text": "Ma, C., Tan, W., He, R. & Yan, B. Pretraining a foundation model for generalizable "
        "fluorescence microscopy-based image restoration. Nature Methods 21, 1558-1567 (2024).",
        "doi": "10.1038/s41592-024-02244-3",
    },
    "unifmir-data": {
        "text": "Ma, C. et al. UniFMIR training and test data. Zenodo (2023).",
        "doi": "10.5281/zenodo.8401470",
    },
    "swinir": {
        "text": "Liang, J. et al. SwinIR: Image Restoration Using Swin Transformer. ICCV Workshops (2021).",
        "url": "https://arxiv.org/abs/2108.10257",
    },
    "biosr": {
        "text": "Qiao, C. et al. Evaluation and development of deep neural networks for image "
        "super-resolution in optical microscopy. Nature Methods 18, 194-202 (2021).",
        "doi": "10.1038/s41592-020-01048-5",
    },
    "care": {
        "text": "Weigert, M. et al. Content-aware image restoration: pushing the limits of "
        "fluorescence microscopy. Nature Methods 15, 1090-1097 (2018).",
        "doi": "10.1038/s41592-018-0216-7",
    },
    "vcd": {
        "text": "Wang, Z. et al. Real-time volumetric reconstruction of biological dynamics with "
        "light-field microscopy and deep learning. Nature Methods 18, 551-556 (2021).",
        "doi": "10.1038/s41592-021-01058-x",
    },
    "deepbacs": {
        "text": "Spahn, C. et al. DeepBacs for multi-task bacterial image analysis using open-source "
        "deep learning approaches. Communications Biology 5, 688 (2022).",
        "doi": "10.1038/s42003-022-03634-z",
    },
}


def cite_entries(*keys: str) -> list[dict[str, str]]:
    """Return bioimage.io ``cite`` entries for ``keys`` (unknown keys raise ``KeyError``)."""
    return [dict(CITATIONS[k]) for k in keys]
