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


# Command-line flags of ``lrdecay train`` that override TrainConfig fields of the same name.
_TRAIN_FLAGS = {
    "epochs": int,
    "batch_size": int,
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "seed": int,
    "n_train": int,
    "n_test": int,
    "label_noise": float,
    "preset": str,
    "model": str,
    "width": int,
    "depth": int,
    "optimizer": str,
    "schedule": str,
    "gamma": float,
    "device": str,
    "checkpoint_every": int,
    "eval_every": int,
}


def _load_npz_dataset(path: str) -> dict:
    """A dataset saved by ``lrdecay data`` (or any .npz with x and y, optional group/flipped/y_clean)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        if "x" not in z or "y" not in z:
            raise ValueError(f"--data {path!r} must contain arrays 'x' and 'y'")
        ds = {k: z[k] for k in ("x", "y", "y_clean", "group", "flipped") if k in z}
        if "group_names" in z:
            ds["group_names"] = tuple(str(s) for s in z["group_names"])
        if "n_classes" in z:
            ds["n_classes"] = int(z["n_classes"])
    return ds


def _cmd_train(args: argparse.Namespace) -> int:
    from lrdecay.trainer import TrainConfig, train

    fields = TrainConfig.from_json(args.config).to_dict() if args.config else {}
    for name in _TRAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.milestones is not None:
        fields["milestones"] = [int(m) for m in args.milestones.split(",") if m.strip()]
    if args.full_batch:
        fields["batch_size"] = None
    if args.no_graph:
        fields["cuda_graph"] = False
    if args.no_ledger:
        fields["ledger"] = False
    config = TrainConfig.from_dict(fields)
    dataset = test_sets = None
    if args.data:
        dataset = _load_npz_dataset(args.data)
        test_sets = {"test": _load_npz_dataset(args.test_data)} if args.test_data else {}
    try:
        result = train(config, dataset=dataset, test_sets=test_sets, out_dir=args.out, resume=args.resume)
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    last = result.final
    test = "".join(f", {name} acc {r['acc']:.4f}" for name, r in last.get("test", {}).items())
    print(
        f"epoch {last['epoch']}: train loss {last['train_loss']:.4f}, train acc {last['train_acc']:.4f}{test}"
        f" ({result.wall_time:.1f} s)" + (f"; logs in {result.out_dir}" if result.out_dir else "")
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

    tr = sub.add_parser("train", help="train a model (config JSON and/or flags); logs, checkpoints, plots")
    tr.add_argument("--config", help="TrainConfig JSON file (flags below override its fields)")
    tr.add_argument("--out", help="output folder for log.jsonl, log.csv, PNGs, checkpoint.pt")
    tr.add_argument("--resume", help="checkpoint.pt of a stopped run with the same config")
    tr.add_argument("--data", help=".npz training set (from `lrdecay data`) instead of the config's preset")
    tr.add_argument("--test-data", help=".npz test set to evaluate (with --data)")
    for name, typ in _TRAIN_FLAGS.items():
        tr.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=f"override config.{name}")
    tr.add_argument("--milestones", default=None, help="comma-separated decay epochs, e.g. 10,20")
    tr.add_argument("--full-batch", action="store_true", help="full-batch gradient descent")
    tr.add_argument("--no-graph", action="store_true", help="do not capture the step in a CUDA graph")
    tr.add_argument("--no-ledger", action="store_true", help="no per-sample ledger")
    tr.set_defaults(func=_cmd_train)
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
