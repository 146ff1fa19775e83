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

Plain Python (zlib only): 8-bit RGB or RGBA PNGs, as `mrt decode` writes."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        sys.exit(f'{path}: not a PNG')
    pos, idat, width = 8, b'', 0
    while pos + 8 <= len(data):
        n = struct.unpack('>I', data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            width, height, depth, colour = struct.unpack('>IIBB', body[:10])
            if depth != 8 or colour not in (2, 6):
                sys.exit(f'{path}: only 8-bit RGB or RGBA PNGs')
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    path = sys.argv[1]
    x0, y0, w, h = (int(v) for v in sys.argv[2:6])
    width, height, bpp, rows = read_png(path)
    if x0 < 0 or y0 < 0 or w < 24 or h < 24 or x0 + w > width or y0 + h > height:
        sys.exit(f'{path}: the region must lie inside the {width}x{height} image, at least 24x24')
    grey = [[sum(rows[y0 + y][(x0 + x) * bpp + c] for c in range(3)) / 3 for x in range(w)]
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
