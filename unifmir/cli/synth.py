"""``unifmir synth``: write synthetic training pairs in the dataset layout.

Examples::

    unifmir synth --task sr --n 200 --out data/sr --seed 0
    unifmir synth --task denoise --structure ecoli --n 100 --out data/ecoli   # DeepBacs-like
    unifmir synth --task sr --structure bacteria --n 100 --out data/bacsr     # rods + cocci
"""

from __future__ import annotations

import argparse
import sys

from unifmir.cli import CliError
from unifmir.cli._checks import check_output_dir, fraction, int_at_least, nonneg_int, positive_int
from unifmir.cli._options import add_threads_option
from unifmir.tasks import TASK_NAMES


def _param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    key, val = text.split("=", 1)
    import yaml

    try:
        value = yaml.safe_load(val)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value is not a plain number, true/false or text (YAML tags are not read)"
        ) from None
    if not key.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key.strip(), value


def register(subparsers) -> None:
    from unifmir.data.forward import STRUCTURES

    structures = sorted({s for v in STRUCTURES.values() for s in v})
    p = subparsers.add_parser(
        "synth",
        help="write synthetic input/target pairs for a task",
        description="Write N synthetic pairs for TASK into OUT/{train,test}/{input,target}/*.tif "
        "plus OUT/dataset.yaml (the layout your own data use, see unifmir.data.pairs).",
    )
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--n", type=positive_int, default=200, help="number of pairs (default 200)")
    p.add_argument("--out", required=True, help="output dataset folder")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument(
        "--structure",
        default=None,
        help="content: " + ", ".join(f"{t}: {'/'.join(v)}" for t, v in STRUCTURES.items())
        + " (bacteria variants: ecoli, saureus, bacteria)",
        metavar="|".join(structures[:3]) + "|...",
    )
    p.add_argument("--size", type=int_at_least(8), default=None, help="Y/X size of the inputs (task default)")
    p.add_argument("--test-fraction", type=fraction, default=0.1, help="share of pairs in test/ (0.1)")
    p.add_argument(
        "--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
        help="forward-model parameter, e.g. --param photons=3 --param na=1.4 (repeatable)",
    )
    p.add_argument("--randomized", action="store_true",
                   help="a stream dataset: N held-out pairs in test/ drawn over the task's randomised "
                   "domain (PSF, photons, noise, background, hot pixels, structure families), and training "
                   "pairs drawn on the fly during training (sr, denoise; see unifmir.data.domain)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset that an earlier `unifmir synth` wrote in OUT (never other folders)")
    p.add_argument("--quiet", action="store_true")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import inspect

    from unifmir.data import forward
    from unifmir.data.pairs import synthesize_dataset

    if args.structure is not None and args.structure not in forward.STRUCTURES[args.task]:
        raise CliError(
            f"--structure {args.structure!r} is not available for task {args.task!r}; choose one of "
            f"{', '.join(forward.STRUCTURES[args.task])}"
        )
    params = dict(args.param)
    if args.randomized and (params or args.structure):
        raise CliError("--randomized draws structures and physics from the task's domain: drop --structure/--param")
    if args.randomized:
        from unifmir.data.domain import DOMAINS

        if args.task not in DOMAINS:
            raise CliError(f"--randomized: task {args.task!r} has no randomised domain yet; available: "
                           f"{', '.join(DOMAINS)}")
    generator = forward.GENERATORS[args.task]
    pair_fn, fwd_fn = generator.pair, generator.forward
    allowed = {
        name
        for fn in (pair_fn, fwd_fn)
        for name, par in inspect.signature(fn).parameters.items()
        if par.kind is inspect.Parameter.KEYWORD_ONLY
    }
    allowed -= {"size", "structure", "scale", "lenslets"}
    bad = sorted(set(params) - allowed)
    if bad:
        raise CliError(
            f"unknown --param {', '.join(bad)} for task {args.task!r}; available: {', '.join(sorted(allowed))}"
        )

    def progress(i: int, n: int) -> None:
        if not args.quiet and (i == n or i % max(1, n // 10) == 0):
            print(f"  {i}/{n} pairs", file=sys.stderr)

    check_output_dir("--out", args.out)
    try:
        out = synthesize_dataset(
            args.task, args.n, args.out, seed=args.seed, structure=args.structure,
            test_fraction=args.test_fraction, size=args.size, overwrite=args.overwrite,
            params=params, progress=progress, randomized=args.randomized,
        )
    except FileExistsError as err:
        raise CliError(f"--out {err}") from None
    except TypeError as err:  # a parameter of the wrong kind
        raise CliError(f"--param {', '.join(f'{k}={v!r}' for k, v in params.items())}: {err}") from None
    if not args.quiet:
        print(f"wrote {args.n} {args.task} pairs to {out} (see {out / 'dataset.yaml'})")
    return 0
