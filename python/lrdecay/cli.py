"""The ``lrdecay`` command line: one subcommand per job.

Each subcommand lives in a small ``_cmd_*`` function; ``build_parser`` wires them up.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _cmd_data(args: argparse.Namespace) -> int:
    import numpy as np

    from lrdecay.data import pattern_dataset

    ds = pattern_dataset(
        args.n, preset=args.preset, split=args.split, seed=args.seed, label_noise=args.label_noise
    )
    np.savez(
        args.out,
        x=ds.x,
        y=ds.y,
        y_clean=ds.y_clean,
        group=ds.group,
        flipped=ds.flipped,
        group_names=np.array(ds.group_names),
        n_classes=np.int64(ds.n_classes),
    )
    counts = np.bincount(ds.group, minlength=len(ds.group_names))
    groups = ", ".join(f"{name}={int(c)}" for name, c in zip(ds.group_names, counts))
    print(
        f"wrote {args.out}: x {ds.x.shape} float32, {ds.n_classes} classes, groups: {groups}, "
        f"flipped: {int(ds.flipped.sum())}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    from lrdecay import __version__

    parser = argparse.ArgumentParser(prog="lrdecay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lrdecay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="generate a pattern dataset and save it as .npz")
    data.add_argument("--preset", default="ps10", help="dataset preset (default: ps10)")
    data.add_argument("--n", type=int, default=50_000, help="number of samples (default: 50000)")
    data.add_argument("--split", default="train", choices=["train", "test"])
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--label-noise", type=float, default=None, help="symmetric label-flip rate in [0, 1]")
    data.add_argument("--out", required=True, help="output .npz path")
    data.set_defaults(func=_cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrdecay`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"lrdecay {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
