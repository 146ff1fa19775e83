#!/usr/bin/env python3
"""mkpng.py OUT.png W H SEED: writes a small, valid RGB PNG whose bytes depend on SEED."""
import struct, sys, zlib

out, w, h, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
raw = b''.join(b'\0' + bytes(v for x in range(w)
                             for v in ((x * seed + y) % 256, (y * 3 + seed) % 256, (x ^ y ^ seed) % 256))
               for y in range(h))


def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


with open(out, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
