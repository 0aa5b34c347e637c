"""PNG curves of a run: loss and accuracy per epoch, per group, with the LR decay points marked."""

from __future__ import annotations

import math
import os

__all__ = ["plot_history"]


def _mark_decays(ax, decay_epochs) -> None:
    for i, e in enumerate(decay_epochs):
        ax.axvline(e + 0.5, color="0.5", linestyle="--", linewidth=1, label="LR decay" if i == 0 else None)


def plot_history(records: list[dict], out_dir: str, *, decay_epochs=(), title: str = "") -> list[str]:
    """Write ``loss.png`` and ``accuracy.png`` into ``out_dir``; returns their paths.

    Epochs on the x axis are 1-based (record ``epoch``); a decay after epoch e is drawn at e + 0.5.
    """
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed, the caller's own
    # matplotlib backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def subplots():
        fig = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()

    os.makedirs(out_dir, exist_ok=True)
    epochs = [r["epoch"] for r in records]
    paths = []

    fig, ax = subplots()
    # a diverged run's NaN / inf losses are gaps in the curves; log scale only with something to scale
    shown = _finite([r["train_loss"] for r in records])
    ax.plot(epochs, shown, label="train loss")
    for name in _test_names(records):
        xs, ys = _series(records, lambda r, name=name: r.get("test", {}).get(name, {}).get("loss"))
        if xs:
            ys = _finite(ys)
            shown += ys
            ax.plot(xs, ys, marker=".", label=f"{name} loss")
    _mark_decays(ax, decay_epochs)
    bad = next((r["epoch"] for r in records if not math.isfinite(_finite([r["train_loss"]])[0])), None)
    if bad is not None:
        ax.axvline(bad - 0.5, color="r", linestyle=":", linewidth=1, label=f"loss non-finite from epoch {bad}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    if any(v > 0 for v in shown if math.isfinite(v)):
        ax.set_yscale("log")
    ax.set_title(title or "loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "loss.png"))
    _save(fig, paths[-1])

    fig, ax = subplots()
    ax.plot(epochs, [r["train_acc"] for r in records], color="k", label="train (observed labels)")
    for g in records[-1].get("train_acc_group", {}):
        xs, ys = _series(records, lambda r, g=g: r.get("train_acc_group", {}).get(g))
        ax.plot(xs, ys, label=f"train [{g}]")
    if any(r.get("memorized") is not None for r in records):
        xs, ys = _series(records, lambda r: r.get("memorized"))
        ax.plot(xs, ys, linestyle=":", label="memorized (flipped)")
    for name in _test_names(records):
        xs, ys = _series(records, lambda r, name=name: r.get("test", {}).get(name, {}).get("acc"))
        ax.plot(xs, ys, marker=".", linestyle="-.", label=f"{name}")
        groups = {}
        for r in records:
            groups.update(r.get("test", {}).get(name, {}).get("acc_group", {}))
        if len(groups) > 1:
            for g in groups:
                xs, ys = _series(
                    records, lambda r, name=name, g=g: r.get("test", {}).get(name, {}).get("acc_group", {}).get(g))
                ax.plot(xs, ys, marker=".", linestyle="--", linewidth=1, label=f"{name} [{g}]")
    _mark_decays(ax, decay_epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or "accuracy")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "accuracy.png"))
    _save(fig, paths[-1])
    return paths


def _save(fig, path: str) -> None:
    """Write the figure as a PNG atomically (a killed run never leaves half a PNG)."""
    from lrdecay._atomic import atomic_write

    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)


def _test_names(records):
    names: list[str] = []
    for r in records:
        for k in r.get("test", {}):
            if k not in names:
                names.append(k)
    return names


def _finite(values) -> list[float]:
    """The values as floats, NaN for each one that is None, NaN or infinite."""
    out = []
    for v in values:
        v = float("nan") if v is None else float(v)
        out.append(v if abs(v) != float("inf") else float("nan"))
    return out


def _series(records, get):
    xs, ys = [], []
    for r in records:
        v = get(r)
        if v is not None:
            xs.append(r["epoch"])
            ys.append(v)
    return xs, ys
