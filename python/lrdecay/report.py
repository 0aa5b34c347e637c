"""The reproduction report: ``report.md`` (one section per claim), ``results.json`` and the PNGs.

Experiments write their PNGs into the report folder themselves; this module writes the JSON and the
markdown from their result dicts (see :mod:`lrdecay.experiments.common` for the shape).
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from lrdecay._atomic import atomic_write

if TYPE_CHECKING:
    from lrdecay.experiments.common import ExperimentResult, TableRecord

__all__ = ["verdict_table", "write_report", "render_markdown", "machine_description", "machine_facts",
           "preregistration_meta"]


def machine_description() -> str:
    """A short description of the machine the numbers come from (CPU model and count, GPU name if any)."""
    m = machine_facts()
    parts = [f"{m['cpu_count']}-core {m['cpu_model']} ({m['arch']}, {m['system']})"]
    if m.get("gpu"):
        parts.append(m["gpu"])
    parts.append(f"torch {m.get('torch', '?')} (CPU capability {m.get('torch_cpu_capability', '?')})")
    return ", ".join(parts)


def machine_facts() -> dict[str, Any]:
    """What the numbers depend on besides the code and seeds: CPU model and instruction set torch uses,
    GPU, thread count, versions. (CPU training is bitwise reproducible only on the same CPU type and thread
    count; see the README.)"""
    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "arch": platform.machine(), "system": platform.system(),
                             "python": platform.python_version(), "cpu_model": _cpu_model()}
    try:
        import numpy

        facts["numpy"] = numpy.__version__
    except Exception:  # pragma: no cover - numpy is a dependency
        pass
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["torch_threads"] = torch.get_num_threads()
        try:
            facts["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except Exception:  # pragma: no cover - older torch
            facts["torch_cpu_capability"] = None
        if torch.cuda.is_available():
            facts["gpu"] = torch.cuda.get_device_name(0)
            facts["cuda"] = torch.version.cuda
        try:
            import triton

            facts["triton"] = triton.__version__
        except Exception:
            pass
    except Exception:  # pragma: no cover - a broken CUDA setup must not stop the report
        pass
    try:
        from lrdecay import __version__

        facts["lrdecay"] = __version__
    except Exception:  # pragma: no cover
        pass
    return facts


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _key_numbers(result: ExperimentResult) -> str:
    """The numbers the verdict rule looked at: one short "name = mean ± std" list."""
    from lrdecay.experiments.common import fmt

    out = []
    for k in result.get("verdict_keys", []):
        s = result.get("summary", {}).get(k)
        if s is not None:
            out.append(f"{k} = {fmt(s)}")
    return "; ".join(out)


def verdict_table(results: Mapping[str, ExperimentResult]) -> str:
    """Markdown table: claim, experiment, verdict, key numbers (mean ± std over seeds)."""
    from lrdecay.experiments.common import DOES_NOT_APPLY

    lines = ["| claim | experiment | verdict | key numbers (mean ± std over seeds) |", "|---|---|---|---|"]
    for name, r in results.items():
        v = r["verdict"]
        numbers = v["details"].get("reason", "") if v["status"] == DOES_NOT_APPLY else _key_numbers(r)
        lines.append(f"| {r['claim']} | `{name}` | **{v['status']}** | {numbers} |")
    return "\n".join(lines)


def _md_table(table: TableRecord) -> str:
    headers = table.get("headers", [])
    rows = table.get("rows", [])
    if not headers:
        return ""
    out = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _per_seed_lines(result: ExperimentResult) -> str:
    keys = result.get("verdict_keys", [])
    per = result.get("per_seed", {})
    lines = []
    for k in keys:
        if k in per:
            vals = ", ".join("–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in per[k])
            lines.append(f"- `{k}` per seed {result['seeds']}: {vals}")
    return "\n".join(lines)


def _training_line(r: ExperimentResult) -> str:
    t = r.get("training") or {}
    if not t:
        return f"Wall time {r.get('wall_time', 0.0):.0f} s."
    parts = [f"{t['runs']} training runs"]
    if t.get("shared_runs"):
        parts.append(f"{t['shared_runs']} of them shared with other experiments (trained once)")
    if t.get("cached_runs"):
        parts.append(f"{t['cached_runs']} read back from an earlier call")
    return (", ".join(parts) + f"; their wall times sum to {t['train_time']:.0f} s (a shared run counts in every "
            f"experiment that uses it, and runs trained together as one stacked model each count the group's "
            f"time), analysis {r.get('wall_time', 0.0):.0f} s.")


def render_markdown(results: Mapping[str, ExperimentResult], meta: Mapping[str, Any]) -> str:
    """The text of ``report.md``."""
    from lrdecay.experiments.common import DOES_NOT_APPLY

    data = meta.get("data")
    parts = [
        "# lrdecay: reproducing “How Does Learning Rate Decay Help Modern Neural Networks?”",
        "",
        f"- date: {meta.get('date', '')}",
        f"- machine: {meta.get('machine_text', meta.get('machine', ''))}",
        "- data: " + ("the synthetic pattern datasets" if data is None
                      else f"`{data}`" + (f" — {meta['data_text']}" if meta.get("data_text") else "")),
        f"- preset: `{meta.get('preset', '')}`, seeds: {meta.get('seeds', 'preset default')}",
        *([f"- {meta['preregistration_text']}"] if meta.get("preregistration_text") else []),
        f"- command: `{meta.get('command', '')}`",
        f"- total wall time: {meta.get('wall_time', 0.0):.0f} s"
        + (f" ({meta['workers']} worker processes" + (f", {meta['threads']} torch thread each" if meta.get("threads") else "")
           + ")" if meta.get("workers") else ""),
        "",
        "Each verdict is computed from the per-seed numbers by the rule printed in its section. Numbers are "
        "mean ± std over seeds (sample std). CPU numbers are bitwise reproducible on the same CPU type with the "
        "same thread count, not across CPUs (matrix kernels differ by instruction set): see `results.json` "
        "`meta.machine` for this run's.",
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
        if v["status"] == DOES_NOT_APPLY:
            parts += [f"## {r['claim']} — {r['title']} (`{name}`)", "", f"**Claim.** {r['claim_text']}", "",
                      f"**Does not apply** to {'the pattern datasets' if data is None else f'`{data}`'}: the "
                      f"experiment {v['details'].get('reason', '')}.", ""]
            continue
        parts += [
            f"## {r['claim']} — {r['title']} (`{name}`)",
            "",
            f"**Claim.** {r['claim_text']}",
            "",
            f"**Setup.** {r['setup']} Preset `{r['preset']}`. {_training_line(r)}",
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


def preregistration_meta(data: str | None) -> dict[str, Any]:
    """``{"preregistration": ..., "preregistration_text": ...}`` for a report on ``data``: the packaged
    pre-registration governing it (its sha256 and whether the file is the committed one), or a line saying
    that none does."""
    from lrdecay.experiments import prereg

    pre = prereg.governing(data)
    if pre is None:
        return {"preregistration": None,
                "preregistration_text": f"pre-registration: none governs {data} (its presets were not chosen by a search)"}
    return {"preregistration": pre.to_meta(), "preregistration_text": pre.describe()}


def write_report(
    results: Mapping[str, ExperimentResult],
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
    meta.setdefault("machine", machine_facts())
    meta.setdefault("machine_text", machine_description())
    if "preregistration_text" not in meta:  # every report says which pre-registration it ran under
        meta.update(preregistration_meta(meta.get("data")))
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
