#!/usr/bin/env python3
"""png_colors.py SCREENSHOT.png [X0 Y0 X1 Y1]: how many distinct colours
(each channel cut to 4 bits) a screenshot has, in the box if given.

The browser test's evidence that thumbnails were drawn: a page of text,
boxes and broken-image icons has a few dozen such colours (greys of
anti-aliased text, the header's, the links'), a page of photographs hundreds.
Reads 8-bit RGB or RGBA, non-interlaced PNGs (what Chromium writes) with
scripts/pngread.py."""
import os
import sys

# the reader is the project's one (scripts/pngread.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts'))
from pngread import read_png  # noqa: E402


def main():
    width, height, channels, rows = read_png(sys.argv[1])
    x0, y0, x1, y1 = (int(v) for v in sys.argv[2:6]) if len(sys.argv) >= 6 else (0, 0, width, height)
    colours = set()
    for y in range(max(0, y0), min(height, y1)):
        line = rows[y]
        for x in range(max(0, x0), min(width, x1)):
            i = x * channels
            colours.add((line[i] >> 4, line[i + 1] >> 4, line[i + 2] >> 4))
    print(len(colours))


main()
