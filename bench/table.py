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
              m["python"]), end="")
    if m.get("supervisord") or m.get("pm2"):
        print(" supervisord %s; PM2 %s (Node %s)." % (m.get("supervisord") or "–",
                                                      m.get("pm2") or "–", m.get("node") or "–"),
              end="")
    print()
    print()
    print("Cells: **median** (min–max) over the runs. Ratio: emperor median / the other "
          "system's median, taken in the same run. \"–\": not measured, or the system cannot "
          "do it (the notes below the table say which).")
    print()
    apps = rec.get("details", {}).get("apps") or {}
    groups = {}
    for fig in rec["figures"]:
        parts = fig["id"].split(".")
        app = parts[1] if len(parts) > 1 and parts[1] in apps else ""
        groups.setdefault(app, []).append(fig)
    for app, figs in groups.items():
        if app:
            print("### %s" % apps[app])
            print()
        table(figs)
        print()
    load = rec.get("details", {}).get("load") or {}
    if load:
        print("Load average (1, 5, 15 min) at the start and end of each workload, and how "
              "busy the CPUs were just before it: " + "; ".join(
                  "%s %s → %s (%.0f %% busy)" % (w, " ".join(v["start"].split()[:3]),
                                                 " ".join(v.get("end", "?").split()[:3]),
                                                 100 * v.get("busy_before", 0))
                  for w, v in load.items()) + ".")
        print()
    for k, v in (rec.get("peers_skipped") or {}).items():
        print("- %s" % v)


PEERS = ("uWSGI", "supervisord", "PM2")


def table(figs):
    print("| figure | unit | emperor | uWSGI | supervisord | PM2 | ratio | target | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fig in figs:
        systems = fig["systems"]
        ours = next((k for k in systems if not k.startswith(PEERS)), None)
        cols = []
        for peer in PEERS:
            mine = [(k, v) for k, v in systems.items() if k.startswith(peer)]
            if peer == "uWSGI":
                cols.append("<br>".join("%s: %s" % (k.replace("uWSGI ", ""), cell(v))
                                        for k, v in mine) or "–")
            else:
                cols.append("<br>".join(cell(v) for _, v in mine) or "–")
        ratio = "<br>".join("%s: %s" % (k.replace("uWSGI ", ""), fmt(v))
                            for k, v in (fig.get("ratio") or {}).items()) or "–"
        met = fig.get("target_met")
        print("| %s %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            fig["id"], fig["title"], fig["unit"], cell(systems.get(ours)), *cols, ratio, fig.get("target") or "", "" if met is None else ("yes" if met else "**no**")))


if __name__ == "__main__":
    main()
