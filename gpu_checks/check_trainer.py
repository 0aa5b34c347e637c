"""GPU check of the trainer, in one device call: graph-captured vs eager parity, then epoch timing.

    python gpu_checks/check_trainer.py            # on a CUDA machine (prints a table, writes JSON to $OUT)
    python gpu_checks/check_trainer.py --device cpu   # smoke test of the same script on the CPU, tiny sizes

1. Parity: the same run (fused optimizer, multistep decays inside the run, a partial last batch) with the
   whole step captured in a CUDA graph and eagerly; per-epoch numbers and final parameters must be equal
   (max abs difference printed; bitwise equality reported).
2. Timing, MLP 3×512 + BatchNorm, ps10 50k samples, batch 128: the plain loop a user would write
   (DataLoader(shuffle) over host tensors, per-batch .to(device), torch SGD + MultiStepLR, per-batch .cpu()
   bookkeeping) vs the trainer eager vs the trainer with the CUDA graph (ledger on). Target ≤ 0.06 s/epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from lrdecay.data import pattern_dataset  # noqa: E402
from lrdecay.models import MLP  # noqa: E402
from lrdecay.trainer import Trainer, TrainConfig  # noqa: E402
from common import dataloader_epoch, time_epochs, write_json  # noqa: E402


def parity(device, n, width, epochs):
    ds = pattern_dataset(n, preset="ps10", seed=3, label_noise=0.2)
    test = pattern_dataset(max(n // 4, 10), preset="ps10", split="test", seed=3)
    base = dict(
        epochs=epochs, batch_size=128, width=width, depth=3, milestones=[1, 2], device=str(device),
        optimizer="fused", progress=False, plots=False, seed=5,
    )
    runs = {}
    for name, graph in (("graph", True), ("eager", False)):
        cfg = TrainConfig(**base, cuda_graph=graph)
        t = Trainer(cfg, dataset=ds, test_sets={"test": test})
        r = t.fit()
        runs[name] = (r, t.use_graph)
    (rg, used_graph), (re, _) = runs["graph"], runs["eager"]
    max_diff = 0.0
    bitwise = True
    for (_k, a), b in zip(rg.model.state_dict().items(), re.model.state_dict().values()):
        if a.is_floating_point():
            max_diff = max(max_diff, float((a - b).abs().max()))
        bitwise &= torch.equal(a, b)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("time", "elapsed")} for r in h]
    same_history = strip(rg.history) == strip(re.history)
    ledger_same = bool(np.array_equal(rg.ledger.history(), re.ledger.history()))
    return {
        "graph_used": used_graph,
        "params_bitwise_equal": bool(bitwise),
        "params_max_abs_diff": max_diff,
        "history_equal": same_history,
        "ledger_history_equal": ledger_same,
        "final_train_acc": [rg.final["train_acc"], re.final["train_acc"]],
        "ok": bool(same_history and ledger_same and max_diff <= 1e-5),
    }


def plain_epoch_fn(ds, device, width):
    torch.manual_seed(0)
    n = len(ds.y)
    model = MLP(ds.x.shape[1], ds.n_classes, width=width, depth=3).to(device)
    loader = DataLoader(TensorDataset(torch.from_numpy(ds.x), torch.from_numpy(ds.y), torch.arange(n)),
                        batch_size=128, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [10, 20], 0.1)
    correct = np.zeros(n, bool)

    def epoch():
        return dataloader_epoch(model, loader, opt, sched, correct, device)

    return epoch


def timing(device, n, width, rounds):
    ds = pattern_dataset(n, preset="ps10", seed=0, label_noise=0.2)
    out = {}
    plain = plain_epoch_fn(ds, device, width)
    out["plain_loop_s"], _ = time_epochs(plain, device, rounds)
    for name, graph in (("trainer_eager_s", False), ("trainer_graph_s", True)):
        cfg = TrainConfig(epochs=rounds + 1, batch_size=128, width=width, depth=3, device=str(device),
                          optimizer="fused", cuda_graph=graph, progress=False, plots=False)
        tr = Trainer(cfg, dataset=ds, test_sets={})
        # the first epoch includes warm-up and capture
        out[name], out[name.replace("_s", "_first_epoch_s")] = time_epochs(tr.run_epoch, device, rounds)
    out["speedup_graph_vs_plain"] = out["plain_loop_s"] / out["trainer_graph_s"]
    out["target_s"] = 0.06
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke test, tiny sizes)")
    ap.add_argument("--cpu", action="store_true", help="the same as --device cpu (kept for old command lines)")
    args = ap.parse_args()
    if args.cpu or args.device == "cpu":
        device, n_par, n_time, width, rounds = torch.device("cpu"), 700, 1500, 32, 2
    else:
        if not torch.cuda.is_available():
            print("no CUDA device; use --device cpu for a smoke test", file=sys.stderr)
            return 2
        device, n_par, n_time, width, rounds = torch.device("cuda"), 5000, 50_000, 512, 5
    res = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "torch": torch.__version__}
    res["parity"] = parity(device, n_par, width, epochs=3)
    print(f"parity (graph vs eager): {json.dumps(res['parity'])}", flush=True)
    res["timing"] = timing(device, n_time, width, rounds)
    print(f"{'what':<28}{'s/epoch':>10}")
    for k in ("plain_loop_s", "trainer_eager_s", "trainer_graph_s"):
        print(f"{k:<28}{res['timing'][k]:>10.4f}")
    print(f"speedup graph vs plain: {res['timing']['speedup_graph_vs_plain']:.1f}x (target <= 0.06 s/epoch)")
    write_json("check_trainer", res)
    return 0 if res["parity"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
