#!/usr/bin/python3
"""Writes tests/fixtures/torch_ops.gguf: inputs, outputs and gradients of
every runtime op (and of one Bi-RWKV block and one ViT block) computed by
PyTorch autograd, for tests/test_torch.c to compare against. The C tests need
no Python; rerun this only when an op's definition changes:

    apt-get install python3-torch     # Debian's PyTorch 1.13
    python3 tests/torch/gen_fixtures.py

Conventions. For case NAME, tensors are stored as NAME.<input>, NAME.out
(forward output), NAME.dout (a random upstream gradient r) and
NAME.grad.<input> (gradient of sum(out * r)). Inputs are drawn in float32 and
everything is computed in float64, then stored as float32, so the reference
is as exact as float32 storage allows. The formulas here are written out
independently of the C code, from the same definitions (DESIGN.md §3.2 and
codec/runtime/runtime.h, codec/model/blocks.h).
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as Fn

torch.manual_seed(1234)
DT = torch.float64
cases = []  # (name, tensor) in file order


def rand(*shape, scale=1.0, lo=None, hi=None):
    if lo is not None:
        t = torch.rand(*shape, dtype=torch.float32) * (hi - lo) + lo
    else:
        t = torch.randn(*shape, dtype=torch.float32) * scale
    return t.to(DT).requires_grad_(True)


def record(name, inputs, out):
    """Stores inputs, output, a random dout and the gradients of sum(out*dout)."""
    r = torch.randn(out.shape, dtype=torch.float32).to(DT)
    grads = torch.autograd.grad((out * r).sum(), list(inputs.values()), allow_unused=True)
    for k, v in inputs.items():
        cases.append((f"{name}.{k}", v.detach()))
    cases.append((f"{name}.out", out.detach()))
    cases.append((f"{name}.dout", r))
    for (k, _), g in zip(inputs.items(), grads):
        if g is not None:
            cases.append((f"{name}.grad.{k}", g))


# ------------------------------------------------------------------ ops
def layernorm(x, g, b):
    return Fn.layer_norm(x, (x.shape[-1],), g, b, eps=1e-5)


def qshift(x, B, Hg, Wg):
    """Quarter q = 4c/C of the channels comes from the left, right, upper,
    lower neighbour on the grid; zero at the border."""
    C = x.shape[-1]
    g = x.reshape(B, Hg, Wg, C)
    out = torch.zeros_like(g)
    q = [(4 * c) // C for c in range(C)]
    for c in range(C):
        if q[c] == 0:
            out[:, :, 1:, c] = g[:, :, :-1, c]
        elif q[c] == 1:
            out[:, :, :-1, c] = g[:, :, 1:, c]
        elif q[c] == 2:
            out[:, 1:, :, c] = g[:, :-1, :, c]
        else:
            out[:, :-1, :, c] = g[:, 1:, :, c]
    return out.reshape(B * Hg * Wg, C)


def tokenmix(x, xs, mu):
    return mu * x + (1 - mu) * xs


def biwkv(k, v, w, u, B, T):
    """The direct O(T^2) formula of DESIGN.md §3.2."""
    C = k.shape[-1]
    k = k.reshape(B, T, C)
    v = v.reshape(B, T, C)
    t = torch.arange(T, dtype=DT)
    dist = (t[:, None] - t[None, :]).abs()  # (T, T)
    expo = -(dist - 1)[..., None] * w / T  # (T, T, C)
    eye = torch.eye(T, dtype=torch.bool)[..., None]
    expo = torch.where(eye, (u / T).expand(T, T, C), expo)
    logits = expo[None] + k[:, None, :, :]  # (B, t, i, C)
    wts = torch.softmax(logits, dim=2)
    return (wts * v[:, None, :, :]).sum(2).reshape(B * T, C)


def window_attention(qkv, nwin, n, D, heads):
    hd = D // heads
    x = qkv.reshape(nwin, n, 3, heads, hd).permute(2, 0, 3, 1, 4)  # (3, nwin, h, n, hd)
    q, k, v = x[0], x[1], x[2]
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    o = att @ v  # (nwin, h, n, hd)
    return o.permute(0, 2, 1, 3).reshape(nwin * n, D)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def conv(x, w, b, stride):
    k = w.shape[-1]
    return Fn.conv2d(x, w, b, stride=stride, padding=k // 2)


def patchify(img, p):
    B, C, H, W = img.shape
    t = img.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(B * (H // p) * (W // p), C * p * p)


# -------------------------------------------------------------- MS-SSIM
MSSSIM_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def gauss_window(size, sigma=1.5):
    c = torch.arange(size, dtype=DT) - (size - 1) / 2
    g = torch.exp(-(c ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def msssim(x, y):
    """As documented at mrt_msssim in codec/runtime/runtime.h."""
    B, C, H, W = x.shape
    scales = 0
    h, w = H, W
    while scales < 5 and min(h, w) >= 11:
        scales += 1
        h, w = h // 2, w // 2
    if scales == 0:
        scales = 1
    wts = torch.tensor(MSSSIM_WEIGHTS[:scales], dtype=DT)
    if scales < 5:
        wts = wts / wts.sum()
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for s in range(scales):
        size = min(11, H, W)
        if size % 2 == 0:
            size -= 1  # the largest odd window that fits
        g = gauss_window(size)
        def filt(z):
            z = z.reshape(B * C, 1, z.shape[2], z.shape[3])
            z = Fn.conv2d(z, g.reshape(1, 1, 1, -1))
            z = Fn.conv2d(z, g.reshape(1, 1, -1, 1))
            return z.reshape(B, C, z.shape[2], z.shape[3])
        mx, my = filt(x), filt(y)
        sxx = filt(x * x) - mx * mx
        syy = filt(y * y) - my * my
        sxy = filt(x * y) - mx * my
        cs = (2 * sxy + C2) / (sxx + syy + C2)
        lum = (2 * mx * my + C1) / (mx * mx + my * my + C1)
        if s < scales - 1:
            vals.append(cs.mean(dim=(2, 3)))
            hh, ww = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
            x = Fn.avg_pool2d(x[:, :, :hh, :ww], 2)
            y = Fn.avg_pool2d(y[:, :, :hh, :ww], 2)
        else:
            vals.append((lum * cs).mean(dim=(2, 3)))
    out = torch.ones(B, C, dtype=DT)
    for s, v in enumerate(vals):
        out = out * torch.clamp(v, min=1e-6) ** wts[s]
    return out.mean()


# --------------------------------------------------------------- blocks
def rwkv_block(x, p, B, Hg, Wg):
    T = Hg * Wg
    h = layernorm(x, p["ln1.weight"], p["ln1.bias"])
    hs = qshift(h, B, Hg, Wg)
    xk = tokenmix(h, hs, p["att.mu_k"])
    xv = tokenmix(h, hs, p["att.mu_v"])
    xr = tokenmix(h, hs, p["att.mu_r"])
    k = xk @ p["att.key.weight"].T
    v = xv @ p["att.value.weight"].T
    r = xr @ p["att.receptance.weight"].T
    wkv = biwkv(k, v, p["att.decay"], p["att.bonus"], B, T)
    g = torch.sigmoid(r) * layernorm(wkv, p["att.ln_x.weight"], p["att.ln_x.bias"])
    x1 = x + g @ p["att.output.weight"].T
    h = layernorm(x1, p["ln2.weight"], p["ln2.bias"])
    hs = qshift(h, B, Hg, Wg)
    fk = tokenmix(h, hs, p["ffn.mu_k"])
    fr = tokenmix(h, hs, p["ffn.mu_r"])
    vv = torch.relu(fk @ p["ffn.key.weight"].T) ** 2 @ p["ffn.value.weight"].T
    return x1 + torch.sigmoid(fr @ p["ffn.receptance.weight"].T) * vv


def vit_block(x, p, nwin, n, D, heads):
    h = layernorm(x, p["ln1.weight"], p["ln1.bias"])
    qkv = h @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]
    a = window_attention(qkv, nwin, n, D, heads)
    x1 = x + a @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    h = layernorm(x1, p["ln2.weight"], p["ln2.bias"])
    m = gelu_tanh(h @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"])
    return x1 + m @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]


def main():
    # linear with and without bias
    i = {"x": rand(5, 7), "w": rand(3, 7, scale=0.4), "b": rand(3)}
    record("linear", i, i["x"] @ i["w"].T + i["b"])
    i = {"x": rand(4, 6), "w": rand(5, 6, scale=0.4)}
    record("linear_nobias", i, i["x"] @ i["w"].T)
    i = {"x": rand(4, 12, scale=2.0), "g": rand(12), "b": rand(12)}
    record("layernorm", i, layernorm(i["x"], i["g"], i["b"]))
    for name, f in [("gelu", gelu_tanh), ("relu2", lambda z: torch.relu(z) ** 2),
                    ("sigmoid", torch.sigmoid), ("relu", torch.relu),
                    ("softmax", lambda z: torch.softmax(z, dim=-1))]:
        i = {"x": rand(6, 10, scale=2.0)}
        record(name, i, f(i["x"]))
    i = {"qkv": rand(2 * 5, 3 * 8)}
    record("attention", i, window_attention(i["qkv"], 2, 5, 8, 2))
    i = {"k": rand(2 * 9, 5, scale=1.5), "v": rand(2 * 9, 5), "w": rand(5, lo=-3, hi=3),
         "u": rand(5)}
    record("biwkv", i, biwkv(i["k"], i["v"], i["w"], i["u"], 2, 9))
    i = {"x": rand(1 * 3 * 4, 8)}
    record("qshift", i, qshift(i["x"], 1, 3, 4))
    i = {"x": rand(6, 8), "xs": rand(6, 8), "mu": rand(8, lo=0, hi=1)}
    record("tokenmix", i, tokenmix(i["x"], i["xs"], i["mu"]))
    for name, k, s, b in [("conv3s1", 3, 1, True), ("conv3s2", 3, 2, True),
                          ("conv1s1", 1, 1, True), ("conv3s2_nobias", 3, 2, False)]:
        i = {"x": rand(2, 3, 7, 6), "w": rand(4, 3, k, k, scale=0.3)}
        if b:
            i["b"] = rand(4)
        record(name, i, conv(i["x"], i["w"], i.get("b"), s))
    i = {"x": rand(2, 3, 4, 5)}
    record("upsample", i, Fn.interpolate(i["x"], scale_factor=2, mode="nearest"))
    i = {"x": rand(2, 8, 3, 4)}
    record("pixelshuffle", i, Fn.pixel_shuffle(i["x"], 2))
    i = {"x": rand(2, 3, 8, 12)}
    record("patchify", i, patchify(i["x"], 4))
    i = {"x": rand(37), "y": rand(37)}
    record("l1", i, Fn.l1_loss(i["x"], i["y"]).reshape(1))
    i = {"x": rand(37), "y": rand(37)}
    record("mse", i, Fn.mse_loss(i["x"], i["y"]).reshape(1))
    for name, shape in [("msssim", (1, 2, 48, 40)), ("msssim_small", (2, 1, 9, 10))]:
        y = torch.rand(*shape, dtype=torch.float32).to(DT)
        x = (y + 0.15 * torch.randn(*shape, dtype=torch.float32).to(DT)).clamp(0, 1)
        x.requires_grad_(True)
        i = {"x": x, "y": y.requires_grad_(True)}
        record(name, i, msssim(i["x"], i["y"]).reshape(1))

    # one Bi-RWKV block: B=1 on a 3x4 grid, D=8, F=16
    D, F = 8, 16
    p = {}
    for n_, shape in [("ln1.weight", (D,)), ("ln1.bias", (D,)), ("att.mu_k", (D,)),
                      ("att.mu_v", (D,)), ("att.mu_r", (D,)), ("att.decay", (D,)),
                      ("att.bonus", (D,)), ("att.key.weight", (D, D)),
                      ("att.value.weight", (D, D)), ("att.receptance.weight", (D, D)),
                      ("att.ln_x.weight", (D,)), ("att.ln_x.bias", (D,)),
                      ("att.output.weight", (D, D)), ("ln2.weight", (D,)), ("ln2.bias", (D,)),
                      ("ffn.mu_k", (D,)), ("ffn.mu_r", (D,)), ("ffn.key.weight", (F, D)),
                      ("ffn.value.weight", (D, F)), ("ffn.receptance.weight", (D, D))]:
        if "mu_" in n_:
            p[n_] = rand(*shape, lo=0, hi=1)
        elif n_.endswith("decay"):
            p[n_] = rand(*shape, lo=-3, hi=3)
        elif n_.endswith(".weight") and len(shape) == 1:
            p[n_] = rand(*shape, lo=0.5, hi=1.5)
        else:
            p[n_] = rand(*shape, scale=0.5)
    x = rand(12, D)
    record("rwkv", {"x": x, **p}, rwkv_block(x, p, 1, 3, 4))

    # one ViT block: 2 windows of 5 tokens, D=8, 2 heads, F=16
    p = {}
    for n_, shape in [("ln1.weight", (D,)), ("ln1.bias", (D,)), ("attn.qkv.weight", (3 * D, D)),
                      ("attn.qkv.bias", (3 * D,)), ("attn.proj.weight", (D, D)),
                      ("attn.proj.bias", (D,)), ("ln2.weight", (D,)), ("ln2.bias", (D,)),
                      ("mlp.fc1.weight", (F, D)), ("mlp.fc1.bias", (F,)),
                      ("mlp.fc2.weight", (D, F)), ("mlp.fc2.bias", (D,))]:
        if n_.startswith("ln") and n_.endswith("weight"):
            p[n_] = rand(*shape, lo=0.5, hi=1.5)
        else:
            p[n_] = rand(*shape, scale=0.5)
    x = rand(10, D)
    record("vit", {"x": x, **p}, vit_block(x, p, 2, 5, D, 2))

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                       "torch_ops.gguf")
    write_gguf(os.path.normpath(out), cases)


# --------------------------------------------------- a minimal GGUF writer
def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, tensors):
    align = 64
    kv = [("general.alignment", 4, struct.pack("<I", align)),
          ("mrt.fixture.torch_version", 8, gguf_string(torch.__version__))]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, vtype, val in kv:
        head += gguf_string(key) + struct.pack("<I", vtype) + val
    blobs, offset = [], 0
    for name, t in tensors:
        data = t.to(torch.float32).contiguous().numpy().tobytes()
        dims = list(reversed(t.shape)) or [1]
        head += gguf_string(name) + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", 0, offset)  # type F32, offset
        blobs.append((offset, data))
        offset += (len(data) + align - 1) // align * align
    head += b"\0" * ((-len(head)) % align)
    body = bytearray(offset)
    for off, data in blobs:
        body[off:off + len(data)] = data
    with open(path, "wb") as f:
        f.write(head + bytes(body))
    print(f"wrote {path}: {len(tensors)} tensors, {len(head) + len(body)} bytes")


if __name__ == "__main__":
    sys.exit(main())
