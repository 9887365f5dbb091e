#!/usr/bin/env python3
"""table.py — one run of bench/results/results.jsonl as the markdown table of
docs/performance.md. Usage: bench/table.py [N] (N-th record, default the last one)."""
import json
import os
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "results.jsonl")


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v if a >= 1 else "%.3f" % v


def cell(st):
    if not st:
        return "–"
    if st["min"] == st["max"]:
        return fmt(st["median"])
    return "**%s** (%s–%s)" % (fmt(st["median"]), fmt(st["min"]), fmt(st["max"]))


def main():
    with open(RESULTS) as f:
        records = [json.loads(line) for line in f if line.strip()]
    rec = records[int(sys.argv[1])] if len(sys.argv) > 1 else records[-1]
    m = rec["machine"]
    print("Run of %s, commit `%s`%s, %s s. Machine: %d cores (%s), %.1f GiB, Linux %s, "
          "Debian %s; %s; %s; Python %s." % (
              rec["date"], rec["commit"][:12],
              " (with uncommitted product changes)" if rec.get("product_sources_dirty") else "",
              fmt(rec["duration_s"]), m["nproc"], m["cpu"], m["memory_kib"] / 1048576.0,
              m["kernel"], m["debian"], "uWSGI " + (m["uwsgi"] or "?"),
              (m["wrk"] or "wrk ?").split(" [")[0],
              m["python"]))
    print()
    print("Cells: **median** (min–max) over the runs. Ratio: emperor median / uWSGI median.")
    print()
    print("| figure | unit | emperor | uWSGI | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for fig in rec["figures"]:
        systems = fig["systems"]
        ours = systems.get("emperor")
        others = [(k, v) for k, v in systems.items() if k != "emperor"]
        uw = "<br>".join("%s: %s" % (k.replace("uWSGI ", ""), cell(v)) for k, v in others) or "–"
        ratio = "<br>".join(fmt(v) for v in (fig.get("ratio") or {}).values()) or "–"
        met = fig.get("target_met")
        print("| %s %s | %s | %s | %s | %s | %s | %s |" % (
            fig["id"], fig["title"], fig["unit"], cell(ours), uw, ratio,
            fig.get("target") or "", "" if met is None else ("yes" if met else "**no**")))


if __name__ == "__main__":
    main()
