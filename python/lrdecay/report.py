"""The reproduction report: ``report.md`` (one section per claim), ``results.json`` and the PNGs.

Experiments write their PNGs into the report folder themselves; this module writes the JSON and the
markdown from their result dicts (see :mod:`lrdecay.experiments.common` for the shape).
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Mapping, Sequence

from lrdecay._atomic import atomic_write

__all__ = ["verdict_table", "write_report", "render_markdown", "machine_description"]


def machine_description() -> str:
    """A short description of the machine the numbers come from (CPU count, GPU name if any)."""
    parts = [f"{os.cpu_count()}-core CPU ({platform.machine()}, {platform.system()})"]
    try:
        import torch

        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
        parts.append(f"torch {torch.__version__}")
    except Exception:  # pragma: no cover - torch is a dependency; a broken CUDA setup must not stop the report
        pass
    return ", ".join(parts)


def _key_numbers(result: Mapping[str, Any]) -> str:
    """The numbers the verdict rule looked at: one short "name = mean ± std" list."""
    from lrdecay.experiments.common import fmt

    keys = list(result.get("verdict_keys") or [])
    if not keys:
        keys = _VERDICT_KEYS.get(result.get("name", ""), [])
    out = []
    for k in keys:
        s = result.get("summary", {}).get(k)
        if s is not None:
            out.append(f"{k} = {fmt(s)}")
    return "; ".join(out)


# The per-seed numbers each experiment's rule reads (its ``judge`` arguments), shown in the verdict table.
_VERDICT_KEYS = {
    "stages": ["jump_acc_decay1", "ratio_acc_decay1", "ratio_acc_control1"],
    "gd": ["ratio_sgd1", "ratio_gd1"],
    "beliefs": ["early_loss_small", "early_loss_large", "final_train_acc_small", "final_train_acc_lrDecay",
                "final_test_acc_small", "final_test_acc_lrDecay"],
    "memorization": ["mem_stage1_lrDecay", "mem_stage1_small", "mem_final_lrDecay"],
    "complexity": ["easy_stage1", "easy_final", "complex_stage1", "complex_final", "complex_stage1_large",
                   "complex_final_large"],
    "transfer": ["probe_target_stage1", "probe_target_final", "source_test_stage1", "source_test_final"],
    "autodecay": ["epochs_to_target_fixed", "epochs_to_target_auto", "final_test_fixed", "final_test_auto"],
}


def verdict_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table: claim, experiment, verdict, key numbers (mean ± std over seeds)."""
    lines = ["| claim | experiment | verdict | key numbers (mean ± std over seeds) |", "|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {r['claim']} | `{name}` | **{r['verdict']['status']}** | {_key_numbers(r)} |")
    return "\n".join(lines)


def _md_table(table: Mapping[str, Any]) -> str:
    headers = table.get("headers", [])
    rows = table.get("rows", [])
    if not headers:
        return ""
    out = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _per_seed_lines(result: Mapping[str, Any]) -> str:
    keys = _VERDICT_KEYS.get(result.get("name", ""), [])
    per = result.get("per_seed", {})
    lines = []
    for k in keys:
        if k in per:
            vals = ", ".join("–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in per[k])
            lines.append(f"- `{k}` per seed {result['seeds']}: {vals}")
    return "\n".join(lines)


def render_markdown(results: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The text of ``report.md``."""
    parts = [
        "# lrdecay: reproducing “How Does Learning Rate Decay Help Modern Neural Networks?”",
        "",
        f"- date: {meta.get('date', '')}",
        f"- machine: {meta.get('machine', '')}",
        f"- preset: `{meta.get('preset', '')}`, seeds: {meta.get('seeds', 'preset default')}",
        f"- command: `{meta.get('command', '')}`",
        f"- total wall time: {meta.get('wall_time', 0.0):.0f} s",
        "",
        "Each verdict is computed from the per-seed numbers by the rule printed in its section; the rules were "
        "written before any result was seen. Numbers are mean ± std over seeds (sample std).",
        "",
        "## Verdicts",
        "",
        verdict_table(results),
        "",
    ]
    if meta.get("notes"):
        parts += ["## Notes on the presets", "", *[f"- {n}" for n in meta["notes"]], ""]
    for name, r in results.items():
        v = r["verdict"]
        parts += [
            f"## {r['claim']} — {r['title']} (`{name}`)",
            "",
            f"**Claim.** {r['claim_text']}",
            "",
            f"**Setup.** {r['setup']} Preset `{r['preset']}`; wall time {r['wall_time']:.0f} s.",
            "",
            _md_table(r["table"]),
            "",
            *[f"![{p}]({p})" for p in r.get("plots", [])],
            "",
            f"**Rule.** {v['rule']}",
            "",
            f"**Verdict: {v['status']}.** Sub-conditions per seed: "
            + "; ".join(f"{k}: {val}" for k, val in v.get("details", {}).items()),
            "",
            _per_seed_lines(r),
            "",
            *[f"- {n}" for n in r.get("notes", [])],
        ]
    return "\n".join(parts).rstrip() + "\n"


def write_report(
    results: Mapping[str, Mapping[str, Any]],
    out_dir: str | os.PathLike,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write ``results.json`` and ``report.md`` into ``out_dir`` (the PNGs are already there).

    Returns ``{"json": path, "markdown": path}``. Files are written to a temp name and renamed, so an
    interrupted write never leaves a half report.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(meta or {})
    meta.setdefault("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    meta.setdefault("machine", machine_description())
    paths = {"json": os.path.join(out_dir, "results.json"), "markdown": os.path.join(out_dir, "report.md")}
    payload = {"meta": meta, "experiments": dict(results)}
    _atomic_write(paths["json"], json.dumps(payload, indent=1, allow_nan=False) + "\n")
    _atomic_write(paths["markdown"], render_markdown(results, meta))
    return paths


def _atomic_write(path: str, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def load_results(path: str | os.PathLike) -> dict:
    """Read a ``results.json`` written by :func:`write_report`."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def missing(results: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """Names of experiments without a result (for a partial report)."""
    return [n for n in names if n not in results]
