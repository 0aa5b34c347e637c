"""Markdown table of the sweep results (JSONL files written by sweep.py), one row per run.

    python docs/memorization-vs-prototype/table.py docs/memorization-vs-prototype/results/*.jsonl
"""

from __future__ import annotations

import json
import sys


def f3(v):
    if v is None:
        return "–"
    s = f"{v:.3f}"
    return s[1:] if s.startswith("0") else s


def triple(ep, key):
    return " / ".join(f3(ep.get(e, {}).get(key)) for e in ("10", "20", "30"))


def main(paths):
    print("| variant | seed | n | memorized in-epoch (10/20/30) | memorized eval-mode (10/20/30) "
          "| eval-mode memorized at 30: easy / complex group | test acc 30 | complex test (10/20/30) "
          "| train acc ep 10 (in-epoch) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            ep = r["epochs"]
            last = ep["30"]
            print(f"| {r['variant']} | {r['seed']} | {r['n_train'] // 1000}k | {triple(ep, 'inep')} | {triple(ep, 'eval')} "
                  f"| {f3(last.get('eval_easy'))} / {f3(last.get('eval_complex'))} | {f3(last['test'])} "
                  f"| {triple(ep, 'test_complex')} | {f3(ep['10']['train_acc_inep'])} |")


if __name__ == "__main__":
    main(sys.argv[1:])
