"""The package's run of the prototype setting (ps10-clean, MLP 3x512 + BatchNorm, lrDecay 0.1/0.01/0.001 at
epochs 10 and 20, wd 5e-4, batch 128, label noise 0.2), printing its two memorization measures:
`memorized` (ledger: training-mode predictions made during the epoch) and `train_eval.memorized`
(eval-mode pass over the training set at the epoch end).

    python docs/memorization-vs-prototype/package_run.py --n-train 20000 --seed 500
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lrdecay.trainer import TrainConfig, train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--n-test", type=int, default=5_000)
    ap.add_argument("--label-noise", type=float, default=0.2)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=3, help="hidden layers (the package's full preset: 3)")
    ap.add_argument("--optimizer", choices=["fused", "torch"], default="fused")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--milestones", type=int, nargs="*", default=[10, 20])
    a = ap.parse_args(argv)
    if not 500 <= a.seed <= 599:
        ap.error("this investigation uses seeds 500-599 only")
    torch.set_num_threads(1)
    t0 = time.time()
    cfg = TrainConfig(
        preset="ps10-clean", n_train=a.n_train, n_test=a.n_test, label_noise=a.label_noise, probe_groups=True,
        model="mlp", width=a.width, depth=a.depth, epochs=a.epochs, milestones=a.milestones, batch_size=128,
        lr=0.1, momentum=0.9, weight_decay=5e-4, optimizer=a.optimizer, seed=a.seed, device="cpu",
        eval_every=5, eval_train=True, plots=False, progress=False,
    )
    per_group = {}

    def memorized_by_group(trainer, record):
        """The package records memorization overall only: split both measures by group here."""
        if "train_eval" not in record:
            return
        d = trainer.data
        flipped, group, y = d.host("flipped"), d.host("group"), d.host("y")
        inep = trainer.pred_buf.cpu().numpy() == y
        trainer.model.eval()
        with torch.no_grad():
            pe = torch.cat([trainer.model(d.x[s:s + 4096]).argmax(1) for s in range(0, d.n, 4096)]).numpy()
        trainer.model.train()
        out = {}
        for gi, name in enumerate(d.group_names):
            f = flipped & (group == gi)
            out[f"inep_{name}"] = float(inep[f].mean())
            out[f"eval_{name}"] = float((pe == y)[f].mean())
        per_group[record["epoch"]] = out

    res = train(cfg, callbacks=[memorized_by_group])
    out = {"args": vars(a), "epochs": {}}
    for r in res.history:
        if "train_eval" not in r:
            continue
        rec = {
            "inep": r["memorized"],
            "eval": r["train_eval"]["memorized"],
            **per_group[r["epoch"]],
            "train_acc_inep": r["train_acc"],
            "train_acc_eval": r["train_eval"]["acc"],
            "test": r["test"]["test"]["acc"],
            "test_easy": r["test"]["probe_easy"]["acc"],
            "test_complex": r["test"]["probe_complex"]["acc"],
        }
        out["epochs"][r["epoch"]] = rec
        print(json.dumps({"epoch": r["epoch"], **{k: round(v, 4) for k, v in rec.items()}}), flush=True)
    out["wall"] = time.time() - t0
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
