#!/usr/bin/env python3
"""png_colors.py SCREENSHOT.png [X0 Y0 X1 Y1]: how many distinct colours
(each channel cut to 4 bits) a screenshot has, in the box if given.

The browser test's evidence that thumbnails were drawn: a page of text,
boxes and broken-image icons has a few dozen such colours (greys of
anti-aliased text, the header's, the links'), a page of photographs hundreds.
Reads 8-bit RGB or RGBA, non-interlaced PNGs (what Chromium writes), with
the standard library only."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise SystemExit(f'{path}: not a PNG')
    pos, idat, width = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            width, height, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise SystemExit(f'{path}: not 8-bit RGB/RGBA non-interlaced')
            channels = 3 if ctype == 2 else 4
        elif kind == b'IDAT':
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows


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
