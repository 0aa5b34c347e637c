"""The ``lrdecay`` command line: one subcommand per job.

Each subcommand lives in a small ``_cmd_*`` function; ``build_parser`` wires them up. Every command ends
with one of the exit statuses below (:data:`EXIT_STATUSES`), the same for all of them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Sequence

#: Everything asked for was done.
EXIT_OK = 0
#: A usage error: a bad argument, file or folder, reported in one line before anything is written (also
#: a full disk or a read-only file system met while writing).
EXIT_USAGE = 2
#: Some training run is missing from the results: it failed, or stopped part-way; its traceback is in the
#: sweep's ``sweep.json`` / the run's ``result.json``. Rerunning the same command retries it.
EXIT_RUNS_MISSING = 3
#: Stopped by Ctrl-C or SIGTERM: running runs wrote a checkpoint; the same command (``--resume`` where the
#: command has it) continues.
EXIT_INTERRUPTED = 130

#: The exit statuses, as ``--help`` and the README list them.
EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_USAGE: "usage error (bad argument, file or folder; full disk), nothing trained",
    EXIT_RUNS_MISSING: "some training run failed or is unfinished: it is missing from the results",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGTERM): checkpoints written, the same command resumes",
}


def _cmd_data(args: argparse.Namespace) -> int:
    import numpy as np

    from lrdecay._atomic import atomic_write
    from lrdecay.data import pattern_dataset

    if not os.path.basename(args.out) or os.path.basename(args.out) in (".", "..", ".npz"):
        raise ValueError(f"--out {args.out!r} names a folder; give the .npz file to write, e.g. "
                         f"{os.path.join(args.out, 'data.npz')!r}")
    out = args.out if args.out.endswith(".npz") else args.out + ".npz"  # what np.savez(path) would write
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a folder; give the .npz file to write")
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out}: Not a directory: {parent!r} is a file")
    if os.path.exists(out) and not args.overwrite:
        raise ValueError(f"--out {out} already exists: pass --overwrite to replace it, or choose another name")
    ds = pattern_dataset(  # validates every argument before any work
        args.n, preset=args.preset, split=args.split, seed=args.seed, label_noise=args.label_noise
    )
    arrays = dict(
        x=ds.x,
        y=ds.y,
        y_clean=ds.y_clean,
        group=ds.group,
        flipped=ds.flipped,
        group_names=np.array(ds.group_names),
        n_classes=np.int64(ds.n_classes),
    )
    try:
        # Atomic: a kill mid-write leaves the previous file (if any) whole; without --overwrite an
        # existing file is never replaced, even one another process wrote meanwhile.
        with atomic_write(out, replace=args.overwrite) as f:
            np.savez(f, **arrays)
    except FileExistsError:
        raise ValueError(f"--out {out} was created by another process meanwhile: pass --overwrite to replace it") from None
    counts = np.bincount(ds.group, minlength=len(ds.group_names))
    groups = ", ".join(f"{name}={int(c)}" for name, c in zip(ds.group_names, counts))
    print(
        f"wrote {out}: x {ds.x.shape} float32, {ds.n_classes} classes, groups: {groups}, "
        f"flipped: {int(ds.flipped.sum())}"
    )
    return 0


# `lrdecay train`'s options that are not TrainConfig fields of the same name (the rest are generated from
# the fields' declarations, lrdecay.trainer.fields).
_TRAIN_OWN_OPTIONS = ("--config", "--out", "--resume", "--overwrite", "--data", "--test-data")


def _flag_type(spec):
    """An argparse ``type`` reading one field's flag (its message names the flag and what it accepts)."""

    def parse(text: str):
        try:
            return spec.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.name
    return parse


def _add_field_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field that has one (``--name``; a bool field ``--name`` / ``--no-name``),
    with its type, choices and help from the field's declaration; unset flags leave no attribute."""
    from lrdecay.trainer import TrainConfig
    from lrdecay.trainer.fields import flag_specs

    for spec in flag_specs(TrainConfig):
        if spec.kind == "bool":
            parser.add_argument(spec.option, dest=spec.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=spec.text)
        else:
            parser.add_argument(spec.option, dest=spec.name, type=_flag_type(spec), choices=spec.choices,
                                default=argparse.SUPPRESS, metavar=None if spec.choices else spec.name.upper(),
                                help=spec.text)
        for option, value, text in spec.aliases:
            parser.add_argument(option, dest=spec.name, action="store_const", const=value,
                                default=argparse.SUPPRESS, help=text)


def _train_fields(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the command line set (``--data`` aside, which ``train`` reads itself)."""
    from lrdecay.trainer import TrainConfig
    from lrdecay.trainer.fields import flag_specs

    return {s.name: getattr(args, s.name) for s in flag_specs(TrainConfig) if hasattr(args, s.name)}


def _load_npz_dataset(path: str, flag: str = "--data") -> dict:
    """A dataset saved by ``lrdecay data`` (or any .npz with x and y): :func:`lrdecay.data.npz.load_npz`."""
    from lrdecay.data.npz import load_npz

    return load_npz(path, flag)


def _cmd_train(args: argparse.Namespace) -> int:
    from lrdecay.data.load import IMAGE_DATASETS
    from lrdecay.trainer import TrainConfig, train
    from lrdecay.trainer.checkpoint import checkpoint_path

    # Everything is checked before anything is written or printed: the checkpoint, the config, the data.
    ckpt = checkpoint_path(args.resume) if args.resume else None
    run_dir = os.path.dirname(os.path.abspath(ckpt)) if ckpt else None
    if args.config:
        fields = TrainConfig.from_json(args.config).to_dict()
    elif ckpt and os.path.isfile(os.path.join(run_dir, "config.json")):
        fields = TrainConfig.from_json(os.path.join(run_dir, "config.json")).to_dict()  # the run's own
    else:
        fields = {}
    fields.update(_train_fields(args))
    if args.data in IMAGE_DATASETS:  # real images by name; anything else is an .npz path
        fields["data"] = args.data
        if args.test_data:
            raise ValueError(f"--test-data goes with an .npz --data; --data {args.data} brings its own test split")
    elif args.test_data and not args.data:
        raise ValueError("--test-data goes with an .npz --data")
    config = TrainConfig.from_dict(fields)
    if config.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {config.device}: CUDA is not available (use cpu or auto)")
    dataset = test_sets = None
    if args.data and args.data not in IMAGE_DATASETS:
        dataset = _load_npz_dataset(args.data)
        test_sets = {"test": _load_npz_dataset(args.test_data, "--test-data")} if args.test_data else {}
    out = args.out if args.out is not None else run_dir
    import warnings

    from lrdecay.trainer import DivergedWarning, diverged_at

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergedWarning)  # said once below, in the command's words
            result = train(config, dataset=dataset, test_sets=test_sets, out_dir=out, resume=ckpt,
                           overwrite=args.overwrite)
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    bad = diverged_at(result.history)
    if bad is not None:
        print(f"warning: the run diverged: its training loss turned non-finite (NaN or inf) in epoch {bad}, and "
              f"its numbers from there on are meaningless; try a smaller --lr (was {config.lr:g})", file=sys.stderr)
    last = result.final
    test = "".join(f", {name} acc {r['acc']:.4f}" for name, r in last.get("test", {}).items())
    print(
        f"epoch {last['epoch']}: train loss {last['train_loss']:.4f}, train acc {last['train_acc']:.4f}{test}"
        f" ({result.wall_time:.1f} s)" + (f"; logs in {result.out_dir}" if result.out_dir else "")
    )
    return 0


def _parse_seeds(text: str | None):
    """``--seeds 3`` → 3 seeds (0, 1, 2); ``--seeds 0,5,7`` → those seeds; None → the preset's."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--seeds must be a count (e.g. 3) or a comma-separated list of ints, got {text!r}") from None
    if not values:
        raise ValueError(f"--seeds must not be empty, got {text!r}")
    return values[0] if len(values) == 1 and "," not in text else values


def _default_preset(device: str | None, data: str | None = None) -> str:
    """quick on the CPU, full when CUDA is there (and not turned off with --device cpu); the largest preset
    the data has (digits: quick)."""
    import torch

    from lrdecay.experiments import presets_for

    if device == "cpu" or (device in (None, "auto") and not torch.cuda.is_available()):
        return "quick"
    return "full" if "full" in presets_for(data) else "quick"


#: What ``reproduce`` / ``run`` write into their folder (what --overwrite may delete).
REPORT_OUTPUTS = ("report.md", "results.json", "*.png", "runs", ".*.tmp")
#: What ``regime`` writes into its folder.
REGIME_OUTPUTS = ("sweep", "runs.jsonl", "table.csv", "selection.json", "regime_map.png", "REGIME.md", ".*.tmp")
#: What ``regime --claims`` writes into its folder (CLAIMS.md is written by hand beside the generated files).
CLAIMS_OUTPUTS = ("runs", "claims.csv", "selection.json", "C1.png", "C2.png", "C3.png", "C4.png", "C5.png", "C6.png",
                  "C7.png", "C7-val.png", "holds.png", "paper_like.png", "CLAIMS_TABLES.md", "CLAIMS.md", ".*.tmp")


def _run_experiments(names, args) -> int:
    import time

    from lrdecay import experiments
    from lrdecay.experiments.common import DOES_NOT_APPLY
    from lrdecay.report import preregistration_meta, write_report
    from lrdecay.sweep import RunsMissing

    data = getattr(args, "data", None)
    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and data is None:
        raise ValueError("--data-dir goes with --data cifar10|cifar100|folder|mnist|fashion-mnist|kmnist")
    preset = args.preset or _default_preset(args.device, data)
    seeds = _parse_seeds(args.seeds)
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.device not in (None, "auto", "cpu") and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: CUDA is not available on this machine (use cpu or auto)")
    # resolve and check every experiment's settings, the data and every first-round run before anything is
    # trained or written
    options = experiments.RunOptions(preset=preset, seeds=seeds, device=args.device, data=data, data_dir=data_dir,
                                     out_dir=args.out, workers=args.workers, executor=args.executor)
    plan = experiments.plan(names, options=options)
    from lrdecay.experiments import prereg

    # no reported verdict rests on a seed the pre-registered search chose its settings with
    pre = prereg.governing(data)
    if pre is not None:
        for s in plan.settings.values():
            pre.check_report_seeds(s["seeds"])
    from lrdecay._outdir import OutputDir

    # one writer per report folder; an existing report needs --resume (keep its finished runs) or --overwrite
    out = OutputDir(args.out, kind="reproduce", resume=args.resume, overwrite=args.overwrite,
                    outputs=REPORT_OUTPUTS)
    t0 = time.perf_counter()
    if data not in (None, "digits", "mnist", "fashion-mnist", "kmnist") and preset != "tiny" and plan.settings:
        import torch

        if all(s.get("device") == "cpu" or not torch.cuda.is_available() for s in plan.settings.values()):
            print(f"note: preset {preset} on {data} is sized for one GPU (ResNets on every training image); on this "
                  f"CPU it takes a very long time (--preset tiny checks the setup in minutes)", file=sys.stderr)
    on = "" if data is None else f" on {plan.data_info.describe() if plan.data_info else data}"
    skipped = "".join(f"; {n} does not apply ({why})" for n, why in plan.skipped.items())
    print(f"{args.command_line}: {', '.join(e.name for e in plan.runnable) or 'nothing to run'}{on}, preset "
          f"{preset}, {len(plan.first_round())} runs, executor {args.executor}, {args.workers} worker(s){skipped}; "
          f"finished runs are kept in {os.path.join(args.out, 'runs')} (add --resume to continue after a stop)",
          file=sys.stderr, flush=True)
    try:
        results = experiments.run_all(names, options=options)
    except KeyboardInterrupt:
        out.release()
        print(f"interrupted: finished runs are in {os.path.join(args.out, 'runs')}; the same command with "
              f"--resume continues", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunsMissing as exc:
        out.release()
        print(f"{args.command_line}: {exc}\nno report written; the tracebacks are in "
              f"{os.path.join(args.out, 'runs', 'sweep.json')}; the same command with --resume retries the "
              f"missing runs and keeps the finished ones", file=sys.stderr)
        return EXIT_RUNS_MISSING
    from lrdecay.experiments.runner import torch_threads

    notes = experiments.preset_notes(data)
    meta = {
        "preset": preset,
        "data": data,
        "data_dir": plan.options.data_dir,
        "data_text": plan.data_info.describe() if plan.data_info else None,
        "seeds": seeds if seeds is not None else "preset default",
        "command": f"{args.command_line} --preset {preset}" + (f" --seeds {args.seeds}" if args.seeds else "")
        + (f" --data {data}" if data else "") + (f" --data-dir {data_dir}" if data_dir else "")
        + (f" --device {args.device}" if args.device else "")
        + (f" --workers {args.workers}" if args.workers != 1 else "")
        + (f" --executor {args.executor}" if args.executor != "auto" else "") + f" --out {args.out}",
        "wall_time": time.perf_counter() - t0,
        "workers": args.workers,
        "executor": args.executor,
        "threads": torch_threads(plan.settings.values()) if plan.settings else None,
        "notes": list(notes.get(preset, [])),
        **preregistration_meta(data),
    }
    paths = write_report(results, args.out, meta)
    out.release()
    width = max(len(n) for n in names)
    for name, r in results.items():
        status = r["verdict"]["status"]
        if status == DOES_NOT_APPLY:
            status += f" ({r['verdict']['details']['reason']})"
        print(f"{r['claim']}  {name:<{width}}  {status}")
    print(meta["preregistration_text"])
    print(f"report: {paths['markdown']} ({meta['wall_time']:.0f} s)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    args.command_line = f"lrdecay run {args.name}"
    return _run_experiments([args.name], args)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from lrdecay import experiments

    names = list(experiments.EXPERIMENTS)
    if args.only:
        names = []
        for item in args.only:
            for n in item.split(","):
                n = n.strip()
                if n and n not in experiments.NAMES:
                    raise ValueError(f"--only must name experiments among {list(experiments.NAMES)}, got {n!r}")
                if n and n not in names:
                    names.append(n)
        if not names:
            raise ValueError(f"--only must name at least one of {list(experiments.NAMES)}")
    args.command_line = "lrdecay reproduce" + (f" --only {','.join(names)}" if args.only else "")
    return _run_experiments(names, args)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from lrdecay.sweep import run_sweep

    if not os.path.isfile(args.spec):  # never inline TOML from the command line: `seeds=3` is a missing file
        raise ValueError(f"spec file {args.spec!r} " + ("is a folder" if os.path.isdir(args.spec) else "does not exist"))

    try:
        result = run_sweep(
            args.spec, args.out, executor=args.executor, workers=args.workers, address=args.address,
            stack=not args.no_stack, max_members=args.max_members, checkpoint_seconds=args.checkpoint_seconds,
            retries=args.retries, extend=args.extend, cpus_per_task=args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
        )
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    from lrdecay.trainer import diverged_at

    for o in result.runs:
        bad = diverged_at(o.history) if o.status == "done" else None
        if bad is not None:
            print(f"diverged: run {o.id} ({o.run.setting or 'seed ' + str(o.run.seed)}): its training loss turned "
                  f"non-finite in epoch {bad} (lr {o.config.lr:g})", file=sys.stderr)
    for o in result.missing:
        what = o.run.setting or "seed " + str(o.run.seed)
        if o.status == "failed":
            last = (o.error or "").strip().splitlines()[-1:] or ["?"]
            print(f"failed: run {o.id} ({what}): {last[0]}", file=sys.stderr)
        else:
            print(f"not finished: run {o.id} ({what}): {o.status}", file=sys.stderr)
    print(f"{result.summary()} ({result.wall_time:.1f} s, executor {result.executor})")
    if result.missing:
        print(f"{len(result.missing)} of {len(result.runs)} runs are missing from the table (tracebacks in "
              f"{os.path.join(result.out_dir, 'sweep.json')}); rerun the same command to retry them", file=sys.stderr)
        return EXIT_RUNS_MISSING
    return EXIT_OK


def _cmd_sweep_plot(args: argparse.Namespace) -> int:
    from lrdecay.sweep import load_sweep
    from lrdecay.sweep.plots import regime_map, run_curves

    if (args.map is None) == (args.curves is None):
        raise ValueError("give exactly one of --map X Y (a regime map) or --curves METRIC (per-epoch curves)")
    result = load_sweep(args.dir)
    epoch = "last" if args.epoch == "last" else int(args.epoch)
    if args.map is not None:
        x, y = args.map
        safe = args.metric.replace("/", "_")
        out = args.out or os.path.join(args.dir, "plots", f"map_{safe}_{x}_{y}" + ("_diff" if args.diff else "") + ".png")
        path = regime_map(result, x, y, args.metric, out, by=None if args.by == "none" else args.by,
                          diff=args.diff, epoch=epoch)
    else:
        out = args.out or os.path.join(args.dir, "plots", f"curves_{args.curves.replace('/', '_')}.png")
        by = [c for c in args.by.split(",") if c] if args.by != "none" else ["run_id"]
        path = run_curves(result, args.curves, out, by=by)
    print(path)
    return 0


def _regime_preregistration(args: argparse.Namespace, default):
    """The packaged pre-registration ``default``, or the file ``--preregistration`` names."""
    if args.preregistration is None:
        return default
    from lrdecay.experiments import prereg

    if not os.path.isfile(args.preregistration):
        raise ValueError(f"--preregistration {args.preregistration!r}: no such file")
    return prereg.load(args.preregistration)


def _cmd_claim_map(args: argparse.Namespace) -> int:
    from lrdecay._outdir import OutputDir
    from lrdecay.experiments import claim_map
    from lrdecay.sweep import RunsMissing

    if args.phase != "all":
        raise ValueError("--claims runs both phases (phase 2's candidates come from phase 1): drop --phase")
    pre = _regime_preregistration(args, claim_map.PREREGISTRATION)
    out_dir = args.out or "docs/claims"
    out = OutputDir(out_dir, kind="claims", resume=args.resume, overwrite=args.overwrite, outputs=CLAIMS_OUTPUTS)
    try:
        print(pre.describe(), flush=True)
        sel = claim_map.run_map(out_dir, workers=args.workers, pre=pre)
    except KeyboardInterrupt:
        print(f"interrupted: finished runs are in {os.path.join(out_dir, claim_map.RUNS_DIR)}; the same command "
              f"with --resume continues", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunsMissing as exc:
        print(f"lrdecay regime --claims: {exc}\nno map written; the same command with --resume retries the missing "
              f"runs and keeps the finished ones", file=sys.stderr)
        return EXIT_RUNS_MISSING
    finally:
        out.release()
    print(f"paper-like: {sel['paperlike'] or 'no setting meets the rule on every pilot seed'}")
    print(f"claims-best (an existence test): {sel['claimsbest'] or 'no claim holds on every pilot seed anywhere'} "
          f"({sel['claims_counted']} claims supported on every pilot seed)")
    print(pre.describe())
    print(f"claims.csv, maps and selection in {out_dir}")
    return 0


def _cmd_regime(args: argparse.Namespace) -> int:
    from lrdecay.experiments import regime
    from lrdecay.sweep import RunsMissing

    from lrdecay._outdir import OutputDir

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.claims:
        return _cmd_claim_map(args)
    if args.out is None:
        args.out = "docs/regime"
    phases = (1, 2) if args.phase == "all" else (int(args.phase),)
    pre = _regime_preregistration(args, regime.PREREGISTRATION)
    regime.check_preregistration(pre)
    regime.check_phases(args.out, phases, pre)
    # the output-folder rule: a folder holding an earlier search needs --resume (or --overwrite)
    out = OutputDir(args.out, kind="regime", resume=args.resume, overwrite=args.overwrite, outputs=REGIME_OUTPUTS)
    try:
        print(pre.describe(), flush=True)
        sel = regime.run_search(args.out, workers=args.workers, phases=phases, pre=pre)
    except KeyboardInterrupt:
        print(f"interrupted: finished runs are in {os.path.join(args.out, regime.SWEEP_DIR)}; the same command "
              f"with --resume continues", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunsMissing as exc:
        print(f"lrdecay regime: {exc}\nno selection written; the tracebacks are in "
              f"{os.path.join(args.out, regime.SWEEP_DIR, 'sweep.json')}; the same command with --resume retries "
              f"the missing runs and keeps the finished ones", file=sys.stderr)
        return EXIT_RUNS_MISSING
    finally:
        out.release()
    for name in ("quick", "full"):
        pick = sel[name]
        print(f"{name}: " + ("no setting meets the premise" if pick is None else
                             f"{regime.setting_id(pick)} (min margin {pick['min_margin']:+.3f}, {pick['cost_s']:.0f} s/run)"))
    print(pre.describe())
    print(f"table, map and selection in {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    from lrdecay import __version__

    parser = argparse.ArgumentParser(
        prog="lrdecay",
        description="lrdecay: how learning-rate decay helps neural networks (You et al.) -- datasets, "
        "training runs and the paper's experiments.",
        epilog="`lrdecay COMMAND --help` lists a command's options with their defaults and choices. A command "
        "that writes a folder refuses one that already holds results unless given --resume or --overwrite, "
        "and one folder has one writer at a time. SIGTERM stops a command like Ctrl-C. " + _exit_statuses_text(),
    )
    parser.add_argument("--version", action="version", version=f"lrdecay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from lrdecay.data import PRESETS as DATA_PRESETS

    data = sub.add_parser(
        "data", help="generate a pattern dataset and save it as .npz",
        description="Generate a seeded synthetic pattern dataset (lrdecay.data.pattern_dataset) and save its "
        "arrays (x, y, y_clean, group, flipped, group_names, n_classes) as one .npz file, written atomically.",
    )
    data.add_argument("--preset", default="ps10", choices=list(DATA_PRESETS), help="dataset preset (default: ps10)")
    data.add_argument("--n", type=int, default=50_000, help="number of samples, in [1, 2**31 - 1] (default: 50000)")
    data.add_argument("--split", default="train", choices=["train", "test"], help="which split (default: train)")
    data.add_argument("--seed", type=int, default=0, help="seed, in [0, 2**64 - 1] (default: 0)")
    data.add_argument("--label-noise", type=float, default=None,
                      help="symmetric label-flip rate in [0, 1] (default: none)")
    data.add_argument("--out", required=True, help="output .npz file (.npz is appended if missing)")
    data.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    data.set_defaults(func=_cmd_data)

    tr = sub.add_parser(
        "train", help="train a model (config JSON and/or flags); logs, checkpoints, plots",
        description="Train one model as a TrainConfig says (a JSON file, and/or the flags below, which override "
        "its fields; the defaults shown are TrainConfig's; a field that may be None takes `none`, a list field "
        "comma-separated items). With --out, the folder gets config.json, log.jsonl, "
        "log.csv, checkpoint.pt, ledger.npz and PNG curves.",
    )
    tr.add_argument("--config", help="TrainConfig JSON file (the flags below override its fields)")
    tr.add_argument("--out", help="output folder (default: none, or the --resume run's folder); a folder that "
                    "holds a run needs --resume or --overwrite")
    tr.add_argument("--resume", metavar="RUN", help="continue a stopped run: its folder (checkpoint.pt, and "
                    "config.json unless --config is given) or a checkpoint file; it continues in that folder, or in a new "
                    "or empty --out")
    tr.add_argument("--overwrite", action="store_true", help="replace what --out holds (only a folder lrdecay wrote)")
    tr.add_argument("--data", help="cifar10, cifar100, digits, folder, mnist, fashion-mnist or kmnist (real images; "
                    "--data-dir says where, needed for cifar10/cifar100/folder), or an .npz training set (from "
                    "`lrdecay data`) instead of --preset")
    tr.add_argument("--test-data", help=".npz test set to evaluate (with an .npz --data)")
    _add_field_flags(tr)
    tr.set_defaults(func=_cmd_train)

    from lrdecay.experiments import NAMES, PRESETS as EXP_PRESETS
    from lrdecay.sweep.executors import EXECUTORS
    from lrdecay.data.load import IMAGE_DATASETS

    def add_experiment_flags(p: argparse.ArgumentParser, out_default: str) -> None:
        p.add_argument("--preset", choices=list(EXP_PRESETS), default=None,
                       help="tiny (seconds), quick (2-core CPU; on cifar10/cifar100/folder: one GPU), full (GPU); "
                            "default: quick on CPU, full on CUDA (digits: quick)")
        p.add_argument("--data", choices=list(IMAGE_DATASETS), default=None,
                       help="run on real images instead of the synthetic pattern datasets: cifar10, cifar100, "
                            "folder (with --data-dir), mnist, fashion-mnist, kmnist (IDX files: --data-dir, else "
                            "$LRDECAY_DATA, else /usr/share/datasets/<name>) or digits (scikit-learn's); complexity "
                            "does not apply")
        p.add_argument("--data-dir", default=None,
                       help="the folder holding --data (CIFAR: cifar-10-batches-py/ or cifar-100-python/ or their "
                            "parent; folder: DIR/train/<class>/... and DIR/test/<class>/...; MNIST family: the four IDX "
                            "files or a parent with a subfolder named like the dataset); never downloaded")
        p.add_argument("--seeds", default=None, help="number of seeds (e.g. 3) or a list (e.g. 0,1,2); default: the preset's")
        p.add_argument("--out", default=out_default, help=f"output folder (default: {out_default})")
        p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the preset's)")
        p.add_argument("--workers", type=int, default=2 if (os.cpu_count() or 1) >= 2 else 1,
                       help="training processes, one torch thread each on CPU (default: 2 on a multi-core "
                            "machine); use 1 on a GPU")
        p.add_argument("--resume", action="store_true",
                       help="continue in an --out folder that holds an earlier (stopped) call: its finished runs "
                            "are read back, unfinished ones resume from their checkpoints")
        p.add_argument("--overwrite", action="store_true",
                       help="replace what an --out folder holds from an earlier call")
        p.add_argument("--executor", choices=list(EXECUTORS), default="auto",
                       help="how the runs train (lrdecay.sweep): auto, stack (this process, runs sharing an "
                            "architecture as one stacked model), process (a local pool), ray (default: auto)")

    ru = sub.add_parser("run", help="run one experiment of the paper (results.json, report.md, PNGs)",
                        description="Run one experiment of the paper and write its report section, results.json "
                        "and PNGs into --out.")
    ru.add_argument("name", choices=list(NAMES), help="experiment: " + ", ".join(f"{n} ({c})" for n, c in NAMES.items()))
    add_experiment_flags(ru, "report")
    ru.set_defaults(func=_cmd_run)

    rp = sub.add_parser(
        "reproduce", help="run every experiment of the paper and write report/ (report.md, PNGs, results.json)",
        description="Run the paper's experiments (C1-C7) on one preset and write report.md, results.json and the "
        "PNGs into --out. Runs shared by several experiments are trained once; finished runs are kept in "
        "OUT/runs/, so the same command resumes after Ctrl-C. Experiments: "
        + ", ".join(f"{n} ({c})" for n, c in NAMES.items()) + ".",
    )
    rp.add_argument("--only", action="append", default=None, metavar="NAME",
                    help="run only these experiments (repeatable or comma-separated): " + ", ".join(NAMES))
    add_experiment_flags(rp, "report")
    rp.set_defaults(func=_cmd_reproduce)

    sw = sub.add_parser(
        "sweep", help="run a sweep (SPEC: TOML/JSON base config, grid, settings, seeds) into one folder and table",
        description="Run every run of SPEC into --out (runs/<id>/, table.csv, sweep.json). Rerunning skips "
        "finished runs and resumes unfinished ones. " + _exit_statuses_text())
    sw.add_argument("spec", help="sweep spec file (.toml or .json)")
    sw.add_argument("--out", required=True, help="sweep folder")
    sw.add_argument("--executor", default="auto", choices=list(EXECUTORS),
                    help="auto (default), stack (this process), process (local pool), ray")
    sw.add_argument("--workers", type=int, default=None, help="worker processes / concurrent tasks (default: one per core or GPU)")
    sw.add_argument("--address", default=None, help="Ray cluster address (implies --executor ray)")
    sw.add_argument("--no-stack", action="store_true", help="train every run alone instead of stacking runs that share an architecture")
    sw.add_argument("--max-members", type=int, default=64, help="most runs in one stacked model (default 64)")
    sw.add_argument("--checkpoint-seconds", type=float, default=30.0,
                    help="a run checkpoints at an epoch end once this many seconds passed since its last one "
                    "(0: every epoch; default 30)")
    sw.add_argument("--retries", type=int, default=2, help="reruns of a task whose worker died (default 2)")
    sw.add_argument("--extend", action="store_true", help="add this spec's runs to a folder holding another sweep")
    sw.add_argument("--cpus-per-task", type=float, default=1, help="Ray: CPUs each task asks for (default 1)")
    sw.add_argument("--gpus-per-task", type=float, default=None,
                    help="Ray: GPUs each task asks for, fractional allowed (default: 1 for CUDA runs, else 0)")
    sw.set_defaults(func=_cmd_sweep)

    sp = sub.add_parser("sweep-plot", help="plots from a sweep's table: a regime map over two axes, or per-epoch curves",
                        description="--map X Y --metric M: the metric (each run's last value, or --epoch N), "
                        "mean over seeds, as a heatmap over two axes, one panel per --by value (or --diff A B: "
                        "the difference of two of them). --curves M: the metric per epoch, mean ± std over "
                        "seeds, one line per --by group (comma-separated columns).")
    sp.add_argument("dir", help="sweep folder")
    sp.add_argument("--map", nargs=2, metavar=("X", "Y"), help="two axes (config fields, e.g. lr label_noise)")
    sp.add_argument("--metric", default="test.test.acc", help="table column for --map (default: test.test.acc)")
    sp.add_argument("--curves", metavar="METRIC", help="per-epoch curves of this table column")
    sp.add_argument("--by", default="setting", help="panel / line grouping column(s) (default: setting; none)")
    sp.add_argument("--diff", nargs=2, metavar=("A", "B"), help="with --map: one panel of A - B (two --by values)")
    sp.add_argument("--epoch", default="last", help="with --map: the epoch read (default: each run's last value)")
    sp.add_argument("--out", default=None, help="PNG path (default: DIR/plots/...)")
    sp.set_defaults(func=_cmd_sweep_plot)

    rg = sub.add_parser(
        "regime", help="the pre-registered regime search: where lrDecay beats both constant LRs (pilot seeds)",
        description="Train every setting of the pre-registered grid (lrdecay/experiments/preregistered/patterns.toml) "
        "on pilot seeds through the sweep engine (runs in OUT/sweep/; runs already in OUT/runs.jsonl, the first "
        "search's log, are read, not retrained), draw the regime map and pick the reproduction's presets by the "
        "premise alone (lrdecay.experiments.regime.CRITERION). Resumable.",
    )
    rg.add_argument("--out", default=None, help="output folder (default: docs/regime, with --claims docs/claims); a "
                    "folder that holds anything needs --resume or --overwrite")
    rg.add_argument("--claims", action="store_true",
                    help="the claim map instead (lrdecay/experiments/preregistered/claims.toml): every claim's rule "
                    "outcome and effect size on every setting of its grid (pilot seeds), one heatmap per claim, "
                    "claims.csv, and the paper-like and claims-best picks (lrdecay.experiments.claim_map)")
    rg.add_argument("--resume", action="store_true", help="continue the search in --out: its finished runs "
                    "(sweep/, runs.jsonl) are kept, the rest are trained, and the table, map and selection rewritten")
    rg.add_argument("--overwrite", action="store_true", help="delete what --out holds from an earlier search first")
    rg.add_argument("--workers", type=int, default=2, help="worker processes, one torch thread each (default: 2)")
    rg.add_argument("--phase", choices=["1", "2", "all"], default="all", help="which phases to run (default: all)")
    rg.add_argument("--preregistration", default=None, metavar="FILE",
                    help="run under this pre-registration file instead of the packaged, committed one "
                    "(lrdecay.experiments.prereg describes the format); the outputs say it is not the committed file")
    rg.set_defaults(func=_cmd_regime)
    return parser


def _exit_statuses_text() -> str:
    return "Exit status: " + "; ".join(f"{code} {what}" for code, what in EXIT_STATUSES.items()) + "."


def _sigterm_is_ctrl_c(signum, frame) -> None:
    # SIGTERM (kill, a batch system's stop) stops like Ctrl-C: whatever handles SIGINT right now runs
    # (training stops at a step boundary with a checkpoint, a second one ends the workers at once)
    signal.raise_signal(signal.SIGINT)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (a spec or config error may quote multi-line text)."""
    return " ".join(str(exc).split("\n")) if str(exc) else type(exc).__name__


def _os_error(exc: OSError) -> str:
    """An OSError as one line naming the file: "No space left on device: 'runs/x/log.jsonl'"."""
    what = exc.strerror or str(exc) or type(exc).__name__
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    files = " -> ".join(repr(os.fsdecode(n)) for n in names)
    return f"{what}: {files}" if files else what


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrdecay`` console script (its exit statuses: :data:`EXIT_STATUSES`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal.signal(signal.SIGTERM, _sigterm_is_ctrl_c)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, ImportError) as exc:  # ImportError: an optional extra is missing
        parser.exit(EXIT_USAGE, f"lrdecay {args.command}: error: {_one_line(exc)}\n")
    except OSError as exc:  # a full disk, a read-only file system, a path through a file, a folder as a file
        parser.exit(EXIT_USAGE, f"lrdecay {args.command}: error: {_os_error(exc)}\n")
    except RecursionError:
        parser.exit(EXIT_USAGE, f"lrdecay {args.command}: error: an input file is nested too deeply to read\n")
    except MemoryError as exc:
        parser.exit(EXIT_USAGE, f"lrdecay {args.command}: error: out of memory{': ' + str(exc) if str(exc) else ''} "
                                f"(a size argument too large?)\n")
    except KeyboardInterrupt as exc:  # a command stopped before or after its own Ctrl-C handling
        print(f"interrupted{': ' + _one_line(exc) if str(exc) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)


if __name__ == "__main__":
    sys.exit(main())
