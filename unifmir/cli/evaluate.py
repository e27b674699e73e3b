"""``unifmir evaluate``: per-image metrics of a model and the classical baselines on a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from unifmir.cli import CliError
from unifmir.cli._checks import device
from unifmir.cli._options import add_threads_option
from unifmir.tasks import TASK_NAMES

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model and the classical baselines on a paired dataset",
        description="Restore every input image of a paired dataset (DIR/<split>/input, "
        "DIR/<split>/target) with the model and with the task's classical baselines, and write a "
        "per-image CSV and a markdown summary (mean ± std of PSNR, SSIM, NRMSE) stating the metric "
        "protocol and its data range.",
    )
    p.add_argument("--model", required=True, metavar="CKPT",
                   help="our checkpoint or an official UniFMIR checkpoint")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset root (see `unifmir synth`)")
    p.add_argument("--protocol", choices=("care", "unifmir"), default="care",
                   help="metric protocol (default: care)")
    p.add_argument("--split", default="test", help="dataset split to evaluate (default: test)")
    p.add_argument("--task", default=None, choices=TASK_NAMES,
                   help="task to evaluate (default: the dataset's, from dataset.yaml)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder for evaluation.csv and evaluation.md "
                   "(default: print the summary only)")
    p.add_argument("--overwrite", action="store_true", help="replace existing report files")
    p.add_argument("--device", type=device, default=None, help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--no-baselines", action="store_true", help="skip the classical baselines")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation described by the parsed arguments."""
    from unifmir.cli._checks import check_dataset_dir, check_model_path, check_output_dir
    from unifmir.data.datasets import validate_dataset
    from unifmir.data.pairs import load_dataset_info
    from unifmir.training.evaluate import evaluate_checkpoint, write_report

    model = check_model_path("--model", args.model)
    data = check_dataset_dir("--data", args.data)
    if not (data / args.split).is_dir():
        raise CliError(f"--data {data}: no {args.split!r} split folder ({data / args.split}); "
                       "create one with `unifmir synth` or bring DIR/<split>/input and target")
    if args.out is not None:
        out = Path(args.out)
        if not args.overwrite:
            for name in ("evaluation.csv", "evaluation.md"):
                if (out / name).exists():
                    raise CliError(f"{out / name} exists; pass --overwrite or another --out")
        check_output_dir("--out", out)
        if data.absolute() in (out.absolute(), *out.absolute().parents):
            raise CliError(f"--out {out} lies inside the dataset folder {data}; choose a folder outside your data")
    # the whole split is checked (files, channels, shapes, pairs, finite values) before the model runs
    info = load_dataset_info(data, args.task)
    validate_dataset(data, args.task or info.task, (args.split,), progress=True)
    result = evaluate_checkpoint(model, data, protocol=args.protocol, split=args.split,
                                 task=args.task or info.task, device=args.device,
                                 baselines=not args.no_baselines, progress=True)
    print(result.to_markdown(f"Evaluation of {model.name}"))
    if args.out is not None:
        from unifmir._atomic import clean_stale

        clean_stale(args.out, force=True)
        csv_path, md_path = write_report(result, args.out, overwrite=args.overwrite,
                                         title=f"Evaluation of {model.name}")
        print(f"wrote {csv_path} and {md_path}")
    return 0
