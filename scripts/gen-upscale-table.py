#!/usr/bin/env python3
"""Prints the normative upscaling filter of bitstream version 2
(codec/BITSTREAM.md §7, codec/io/resample.c): Lanczos-3 at 64 phases,
6 taps each, integer weights summing to exactly 2^14.

Phase p (fraction f = p/64 of a source pixel) weighs the source pixels at
distances t - 2 - f, t = 0..5, from the sample position. Each row is rounded
to nearest and the rounding error is given to the largest weight, so that a
flat picture stays exactly flat. The table in resample.c is this script's
output; the script is kept so that the table can be checked, not run at
build time."""
import math

def lanczos3(x):
    x = abs(x)
    if x < 1e-12:
        return 1.0
    if x >= 3.0:
        return 0.0
    px = math.pi * x
    return 3.0 * math.sin(px) * math.sin(px / 3.0) / (px * px)

ONE = 1 << 14
rows = []
for p in range(64):
    f = p / 64.0
    w = [lanczos3(t - 2 - f) for t in range(6)]
    s = sum(w)
    q = [round(v / s * ONE) for v in w]
    q[max(range(6), key=lambda t: q[t])] += ONE - sum(q)
    rows.append(q)
for p, q in enumerate(rows):
    print("    {" + ", ".join("%6d" % v for v in q) + "}," + (" /* phase %d */" % p if p % 8 == 0 else ""))
