#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""fwd-plot.py CSV SVG: the added forwarding cost per packet against N (both axes
logarithmic), one panel per workload, one line per backend, from fwd-cost.sh's summary
(fwd-cost.csv). Bars: min..max over the rounds. A median at or below 0 (within the noise)
is drawn hollow on the panel's floor. Standard library only."""

import csv
import math
import sys
from collections import defaultdict

COLORS = {"rust_nf": "#d62728", "iptables-legacy": "#1f77b4", "iptables-nft": "#ff7f0e", "nft": "#2ca02c"}
W, H = 520, 380  # one panel
ML, MR, MT, MB = 70, 20, 40, 50


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = defaultdict(lambda: defaultdict(list))  # workload -> backend -> [(n, med, lo, hi)]
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            data[row["workload"]][row["backend"]].append(
                (int(row["n"]), float(row["added_ns_median"]), float(row["added_ns_min"]), float(row["added_ns_max"]))
            )
    if not data:
        sys.exit("no data in " + src)
    workloads = list(data)
    pos = [v for wl in data.values() for pts in wl.values() for p in pts for v in p[1:] if v > 0]
    ymax = max(pos) if pos else 1e6
    ymin = min(pos) if pos else 1e3
    # floor: a decade below the smallest positive value, µs units on the axis
    y0 = 10 ** math.floor(math.log10(ymin)) / 10
    y1 = 10 ** math.ceil(math.log10(ymax))
    ns = sorted({p[0] for wl in data.values() for pts in wl.values() for p in pts})
    x0, x1 = ns[0] / 2, ns[-1] * 2
    out = []
    total_w = W * len(workloads)
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{H + 30}" '
               f'font-family="sans-serif" font-size="12">')
    out.append(f'<rect width="{total_w}" height="{H + 30}" fill="white"/>')
    for i, wl in enumerate(workloads):
        ox = i * W
        pw, ph = W - ML - MR, H - MT - MB

        def fx(n):
            return ox + ML + pw * (math.log10(n) - math.log10(x0)) / (math.log10(x1) - math.log10(x0))

        def fy(v):
            v = max(v, y0)
            return MT + ph * (1 - (math.log10(v) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)))

        out.append(f'<text x="{ox + ML + pw / 2}" y="20" text-anchor="middle" font-size="14">'
                   f'{wl}: added ns per forwarded packet</text>')
        out.append(f'<rect x="{ox + ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        e = int(math.log10(y0))
        while 10 ** e <= y1:
            y = fy(10 ** e)
            out.append(f'<line x1="{ox + ML}" x2="{ox + ML + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{ox + ML - 5}" y="{y + 4:.1f}" text-anchor="end">{fmt(10 ** e)}</text>')
            e += 1
        for n in ns:
            x = fx(n)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{MT + ph}" stroke="#eee"/>')
            out.append(f'<text x="{x:.1f}" y="{MT + ph + 16}" text-anchor="middle">{n}</text>')
        out.append(f'<text x="{ox + ML + pw / 2}" y="{MT + ph + 36}" text-anchor="middle">N rules (log)</text>')
        for j, (backend, pts) in enumerate(sorted(data[wl].items())):
            col = COLORS.get(backend, "#555")
            pts.sort()
            path = " ".join(f"{'M' if k == 0 else 'L'}{fx(n):.1f},{fy(m):.1f}" for k, (n, m, _, _) in enumerate(pts))
            out.append(f'<path d="{path}" fill="none" stroke="{col}" stroke-width="1.5"/>')
            for n, m, lo, hi in pts:
                x = fx(n)
                if hi > 0:
                    out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{fy(lo):.1f}" y2="{fy(hi):.1f}" '
                               f'stroke="{col}" stroke-opacity="0.5"/>')
                fill = col if m > 0 else "white"
                out.append(f'<circle cx="{x:.1f}" cy="{fy(m):.1f}" r="3.5" fill="{fill}" stroke="{col}"/>')
            ly = MT + 14 + 16 * j
            out.append(f'<line x1="{ox + ML + 10}" x2="{ox + ML + 30}" y1="{ly - 4}" y2="{ly - 4}" '
                       f'stroke="{col}" stroke-width="2"/>')
            out.append(f'<text x="{ox + ML + 35}" y="{ly}">{backend}</text>')
    out.append(f'<text x="10" y="{H + 20}" fill="#555">median over the rounds, bars min..max; hollow: median '
               f'at or below 0 (within the noise), drawn on the floor</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


def fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:g} ms"
    if v >= 1e3:
        return f"{v / 1e3:g} µs"
    return f"{v:g} ns"


if __name__ == "__main__":
    main()
