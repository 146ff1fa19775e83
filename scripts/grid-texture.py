#!/usr/bin/env python3
"""grid-texture.py IMAGE.png X Y W H: how much of a region's fine texture is
locked to the pixel grid, at periods 2, 4 and 8 (the pixel generator's three
2x pixel shuffles from its 1/8 map, docs/DESIGN.md §3.1).

The region's grey levels are high-passed (minus their 9x9 mean); for each
period P the high-pass is averaged over the P x P phases (x mod P, y mod P,
in image coordinates). A texture that does not depend on position averages
out; a pattern repeating with the grid does not. Printed: the RMS of the
phase means (grey levels) and the RMS of the whole high-pass, for a decoded
photo beside its original (models/README.md, "The grid texture").

Plain Python (scripts/pngread.py): 8-bit RGB or RGBA PNGs, as `mrt decode` writes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngread import read_png  # noqa: E402 (scripts/pngread.py)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    path = sys.argv[1]
    x0, y0, w, h = (int(v) for v in sys.argv[2:6])
    width, height, channels, rows = read_png(path)
    if x0 < 0 or y0 < 0 or w < 24 or h < 24 or x0 + w > width or y0 + h > height:
        sys.exit(f'{path}: the region must lie inside the {width}x{height} image, at least 24x24')
    grey = [[sum(rows[y0 + y][(x0 + x) * channels + c] for c in range(3)) / 3 for x in range(w)]
            for y in range(h)]
    r = 4  # the 9x9 mean
    high = {}
    for y in range(r, h - r):
        for x in range(r, w - r):
            mean = sum(grey[yy][xx] for yy in range(y - r, y + r + 1)
                       for xx in range(x - r, x + r + 1)) / (2 * r + 1) ** 2
            high[(y, x)] = grey[y][x] - mean
    total = (sum(v * v for v in high.values()) / len(high)) ** 0.5
    print(f'{path} [{x0},{y0} {w}x{h}]: high-pass RMS {total:.3f} grey levels')
    for period in (2, 4, 8):
        sums, counts = {}, {}
        for (y, x), v in high.items():
            phase = ((y0 + y) % period, (x0 + x) % period)
            sums[phase] = sums.get(phase, 0.0) + v
            counts[phase] = counts.get(phase, 0) + 1
        means = [sums[k] / counts[k] for k in sums]
        rms = (sum(m * m for m in means) / len(means)) ** 0.5
        print(f'  period {period}: phase means RMS {rms:.3f} (from {min(means):+.2f} to {max(means):+.2f})')


if __name__ == '__main__':
    main()
