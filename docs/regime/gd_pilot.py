"""C2's GD budget by the pre-registered feasibility rule (docs/regime/PREREGISTRATION.md), pilot seed 1000.

Trains SGD (C1 milestones) on gd_n_train samples, reads its training accuracy at its first decay, then
runs full-batch GD at the large LR until its training accuracy first reaches that value (at most 4000
steps), and prints the smallest budget in (500, 1000, 2000, 4000) that holds the reach within its half.
Usage: python docs/regime/gd_pilot.py  (reads the quick preset of lrdecay.experiments.gd)
"""

import json
import sys

import torch

from lrdecay.experiments import gd
from lrdecay.experiments.runner import config_from, resolve_settings
from lrdecay.trainer import Trainer, train

SEED = 1000
BUDGETS = (500, 1000, 2000, 4000)


def main() -> None:
    torch.set_num_threads(1)
    s = resolve_settings(gd.EXPERIMENT, "quick")
    sgd = train(gd._sgd_config(s, SEED))
    target = gd._thresholds(s, sgd.history)[0]
    cfg = config_from(s, seed=SEED, n_train=s["gd_n_train"], probe_groups=False, batch_size=None,
                      epochs=max(BUDGETS), schedule="constant", eval_every=max(BUDGETS), ledger=False)
    t = Trainer(cfg)
    reach = None
    while t.epoch < cfg.epochs:
        rec = t.run_epoch()
        if rec["train_acc"] >= target:
            reach = rec["epoch"]
            break
    budget = next((b for b in BUDGETS if reach is not None and reach <= b // 2), max(BUDGETS))
    print(json.dumps({"sgd_first_decay_train_acc": target, "gd_steps_to_reach": reach, "gd_steps": budget}))


if __name__ == "__main__":
    sys.exit(main())
