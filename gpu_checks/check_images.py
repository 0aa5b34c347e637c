"""GPU check of the trainer on CIFAR-format images, in one device call: ResNet-20 on uint8 images resident
on the device, augmentation (random crop with padding, horizontal flip) and normalization inside the step.

    python gpu_checks/check_images.py                        # CUDA, generated CIFAR-format data (50k + 10k)
    python gpu_checks/check_images.py --data-dir ~/data      # CUDA, the real CIFAR-10 (cifar-10-batches-py/)
    python gpu_checks/check_images.py --device cpu           # smoke test of the same code on the CPU, tiny sizes

Without --data-dir the script writes a CIFAR-10 python folder of random images to a temporary directory
and reads it back with lrdecay.data.cifar10 (the reader's code path; the pixel content does not change the
timing). Prints a table and writes $OUT/check_images.json when $OUT is set.

1. Parity: the same run (fused optimizer, decay inside the run, a partial last batch, label noise,
   crop+flip) with the whole step captured in a CUDA graph and eagerly: per-epoch records, ledger and
   final parameters must be equal. cuDNN is put in deterministic mode for this part, so equality is
   bitwise. On CUDA also with channels_last + bf16 autocast.
2. Timing (epoch of training, no evaluation), ResNet-20, batch 128, torch SGD-momentum baselines:
   - the loop a user would write: a torchvision-style Dataset that augments and normalizes one image at a
     time (torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize when
     torchvision is installed, else the same steps in numpy), a DataLoader with worker processes and
     pinned memory, per-batch .to(device), torch.optim.SGD + MultiStepLR, per-batch .cpu() bookkeeping;
   - the trainer eager, the trainer with the CUDA graph, the trainer with the graph + channels_last +
     bf16 autocast (ledger on in all three).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from lrdecay.data import cifar10  # noqa: E402
from lrdecay.images import write_cifar  # noqa: E402
from lrdecay.models import CifarResNet  # noqa: E402
from lrdecay.trainer import Trainer, TrainConfig  # noqa: E402
from common import dataloader_epoch, time_epochs, write_json  # noqa: E402


def generated_cifar(folder: str, n_train: int, n_test: int):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_train + n_test, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=n_train + n_test)
    write_cifar(folder, "cifar10", (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]),
                [f"class{i}" for i in range(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not the official 50000 images" at smoke-test sizes
        return cifar10(folder, "train"), cifar10(folder, "test")


# ------------------------------------------------------------------------------------------- parity
def parity(device, ds, test, *, n, width, batch, channels_last, amp):
    sub = ds.balanced_subset(n, seed=0)
    base = dict(epochs=2, batch_size=batch, model="resnet20", width=width, milestones=[1], device=str(device),
                optimizer="fused", label_noise=None, augment="crop+flip", progress=False, plots=False, seed=5,
                channels_last=channels_last, amp=amp)
    runs = {}
    deterministic = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        for name, graph in (("graph", True), ("eager", False)):
            t = Trainer(TrainConfig(**base, cuda_graph=graph), dataset=sub.with_label_noise(0.1, seed=1),
                        test_sets={"test": test.subset(np.arange(min(len(test), 1000)))})
            runs[name] = (t.fit(), t.use_graph)
    finally:
        torch.backends.cudnn.deterministic = deterministic
    (rg, used_graph), (re, _) = runs["graph"], runs["eager"]
    max_diff, bitwise = 0.0, True
    for (_k, a), b in zip(rg.model.state_dict().items(), re.model.state_dict().values()):
        if a.is_floating_point():
            max_diff = max(max_diff, float((a.float() - b.float()).abs().max()))
        bitwise &= torch.equal(a, b)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("time", "elapsed")} for r in h]  # noqa: E731
    same_history = strip(rg.history) == strip(re.history)
    ledger_same = bool(np.array_equal(rg.ledger.history(), re.ledger.history()))
    return {
        "channels_last": channels_last,
        "amp": amp,
        "graph_used": used_graph,
        "n_train": n,
        "params_bitwise_equal": bool(bitwise),
        "params_max_abs_diff": max_diff,
        "history_equal": same_history,
        "ledger_history_equal": ledger_same,
        "final_train_acc": [rg.final["train_acc"], re.final["train_acc"]],
        "ok": bool(same_history and ledger_same and bitwise),
    }


# ------------------------------------------------------------------------------------------- timing
class PerImageCifar(Dataset):
    """What ``torchvision.datasets.CIFAR10(transform=...)`` does: one HWC uint8 image at a time through
    the augmentation and normalization transforms, in the DataLoader's worker processes."""

    def __init__(self, x_chw: np.ndarray, y: np.ndarray, mean, std, seed: int = 0) -> None:
        self.x = np.ascontiguousarray(x_chw.transpose(0, 2, 3, 1))  # torchvision keeps CIFAR as HWC
        self.y = y
        self.mean = np.asarray(mean, np.float32)[:, None, None]
        self.std = np.asarray(std, np.float32)[:, None, None]
        try:
            import torchvision.transforms as T

            self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                                        T.Normalize(list(mean), list(std))])
            self.kind = "torchvision"
        except ImportError:
            self.transform = None
            self.kind = "numpy (torchvision not installed)"

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = self.x[i]
        if self.transform is not None:
            from PIL import Image

            return self.transform(Image.fromarray(img)), int(self.y[i]), i
        rng = np.random.default_rng()
        padded = np.pad(img, ((4, 4), (4, 4), (0, 0)))
        dy, dx = rng.integers(0, 9, 2)
        crop = padded[dy : dy + 32, dx : dx + 32]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().div_(255)
        return (t - torch.from_numpy(self.mean)) / torch.from_numpy(self.std), int(self.y[i]), i


def dataloader_epoch_fn(ds, device, width, batch, workers):
    torch.manual_seed(0)
    n = len(ds)
    model = CifarResNet(20, ds.n_classes, width=width).to(device)
    data = PerImageCifar(ds.x, ds.y, ds.mean, ds.std)
    loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [100, 150], 0.1)
    correct = np.zeros(n, bool)

    def epoch():
        return dataloader_epoch(model, loader, opt, sched, correct, device)

    return epoch, data.kind


def timing(device, ds, *, width, batch, rounds, workers):
    out: dict = {"n_train": len(ds), "batch": batch, "width": width, "workers": workers}
    fn, kind = dataloader_epoch_fn(ds, device, width, batch, workers)
    out["dataloader_transforms"] = kind
    out["dataloader_s"], out["dataloader_first_epoch_s"] = time_epochs(fn, device, rounds)
    variants = [("trainer_eager_s", dict(cuda_graph=False)), ("trainer_graph_s", dict(cuda_graph=True))]
    if device.type == "cuda":
        variants.append(("trainer_graph_cl_bf16_s", dict(cuda_graph=True, channels_last=True, amp=True)))
    for name, extra in variants:
        cfg = TrainConfig(epochs=rounds + 1, batch_size=batch, model="resnet20", width=width, device=str(device),
                          optimizer="fused", augment="crop+flip", milestones=[100], progress=False, plots=False,
                          **extra)
        tr = Trainer(cfg, dataset=ds, test_sets={})
        out[name], out[name.replace("_s", "_first_epoch_s")] = time_epochs(tr.run_epoch, device, rounds)
    for name, _ in variants:
        out[name.replace("_s", "_speedup_vs_dataloader")] = out["dataloader_s"] / out[name]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke test at tiny sizes)")
    ap.add_argument("--data-dir", default=None, help="a folder with cifar-10-batches-py/ (default: generated data)")
    ap.add_argument("--rounds", type=int, default=None, help="timed epochs per variant (after one warm-up epoch)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers of the baseline")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device; use --device cpu for a smoke test", file=sys.stderr)
        return 2
    small = device.type == "cpu"
    torch.set_num_threads(1 if small else torch.get_num_threads())
    sizes = dict(n_train=512, n_test=128, n_par=192, width=4, batch=64, rounds=1, workers=0) if small else \
        dict(n_train=50_000, n_test=10_000, n_par=4096 + 77, width=16, batch=128, rounds=3,
             workers=min(8, max(1, (os.cpu_count() or 2) - 2)))
    if args.rounds is not None:
        sizes["rounds"] = args.rounds
    if args.workers is not None:
        sizes["workers"] = args.workers

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir:
            ds, test = cifar10(args.data_dir, "train"), cifar10(args.data_dir, "test")
            source = f"CIFAR-10 from {args.data_dir}"
        else:
            ds, test = generated_cifar(tmp, sizes["n_train"], sizes["n_test"])
            source = f"generated CIFAR-format folder ({sizes['n_train']} + {sizes['n_test']} random images)"
    res = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "torch": torch.__version__,
           "data": source, "read_s": time.perf_counter() - t0}
    print(f"data: {source} (read in {res['read_s']:.1f} s)", flush=True)

    res["parity"] = [parity(device, ds, test, n=sizes["n_par"], width=sizes["width"], batch=sizes["batch"],
                            channels_last=False, amp=False)]
    if device.type == "cuda":
        res["parity"].append(parity(device, ds, test, n=sizes["n_par"], width=sizes["width"], batch=sizes["batch"],
                                    channels_last=True, amp=True))
    for p in res["parity"]:
        print(f"parity (graph vs eager): {json.dumps(p)}", flush=True)

    res["timing"] = tm = timing(device, ds, width=sizes["width"], batch=sizes["batch"], rounds=sizes["rounds"],
                                workers=sizes["workers"])
    print(f"\nResNet-20 (width {tm['width']}), {tm['n_train']} images, batch {tm['batch']}, median of "
          f"{sizes['rounds']} epochs; baseline: DataLoader, {tm['workers']} workers, {tm['dataloader_transforms']}")
    print(f"{'what':<28}{'s/epoch':>10}{'images/s':>12}{'vs DataLoader':>15}{'1st epoch s':>13}")
    for k in ("dataloader_s", "trainer_eager_s", "trainer_graph_s", "trainer_graph_cl_bf16_s"):
        if k in tm:
            ratio = tm.get(k.replace("_s", "_speedup_vs_dataloader"), 1.0)
            print(f"{k:<28}{tm[k]:>10.3f}{tm['n_train'] / tm[k]:>12.0f}{ratio:>14.2f}x"
                  f"{tm[k.replace('_s', '_first_epoch_s')]:>13.2f}")
    write_json("check_images", res)
    return 0 if all(p["ok"] for p in res["parity"]) else 1


if __name__ == "__main__":
    sys.exit(main())
