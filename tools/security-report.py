#!/usr/bin/env python3
"""Rewrites the figures table of SECURITY.md from the rows the battery wrote.

    tools/security-report.py FIGURES.tsv [MORE.tsv ...] SECURITY.md

Each input line: category, what was tried, times tried, times held, the test. The table goes
between the markers `<!-- figures:begin -->` and `<!-- figures:end -->`, with the date and
machine of the run.
"""
import datetime
import os
import platform
import sys

*sources, target = sys.argv[1:]
rows = []
for source in sources:
    with open(source, encoding="utf-8") as f:
        rows += [line.rstrip("\n").split("\t") for line in f if line.strip()]
order = {"attack": 0, "fault": 1, "fuzz": 2, "sanitizer": 3}
rows.sort(key=lambda r: (order.get(r[0], 9), r[4]))

totals = {}
for category, _, tried, held, _ in rows:
    t = totals.setdefault(category, [0, 0])
    t[0] += int(tried)
    t[1] += int(held)

lines = [
    f"Last run: {datetime.date.today().isoformat()} on {platform.system()} {platform.release()}, "
    f"{os.cpu_count()} cores, as root with unprivileged identities for the other-user checks.",
    "",
    "| kind | what was tried | tried | held | test |",
    "|---|---|---:|---:|---|",
]
for category, what, tried, held, test in rows:
    lines.append(f"| {category} | {what} | {tried} | {held} | `{test}` |")
lines.append("")
lines.append(
    "Totals: "
    + "; ".join(f"{k}: {v[1]} of {v[0]} held" for k, v in sorted(totals.items(), key=lambda kv: order.get(kv[0], 9)))
    + "."
)

with open(target, encoding="utf-8") as f:
    text = f.read()
begin, end = "<!-- figures:begin -->", "<!-- figures:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
with open(target, "w", encoding="utf-8") as f:
    f.write(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
print(f"{target}: {len(rows)} rows")
