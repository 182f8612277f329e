#!/usr/bin/python3
"""The CPU baseline of packages/tensors/bench/train-step.mjs: forward + backward of one Llama
decoder layer in PyTorch (float32, CPU), the same layer and shapes as the WebGPU side.

    /usr/bin/python3 tools/bench/llama_layer_step.py --batch 8 --seq 256 --dim 288 --heads 6 \
        --kv-heads 6 --ffn 768 --steps 5 [--threads N]

Prints one JSON line: median milliseconds per step, tokens/s, threads, which BLAS library the
process loaded (Debian's reference BLAS makes matmul ~30x slower than OpenBLAS), and peak RSS.
"""

import argparse
import json
import resource
import statistics
import time

import torch


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def layer(h, p, cos, sin, args):
    batch, seq, dim = h.shape
    head_dim = dim // args.heads
    a = rms_norm(h, p['attention_norm'], 1e-5)
    q = (a @ p['wq'].T).view(batch, seq, args.heads, head_dim)
    k = (a @ p['wk'].T).view(batch, seq, args.kv_heads, head_dim)
    v = (a @ p['wv'].T).view(batch, seq, args.kv_heads, head_dim)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    group = args.heads // args.kv_heads
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    o = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
    ) if hasattr(torch.nn.functional, 'scaled_dot_product_attention') else attention(q, k, v)
    h1 = h + o.transpose(1, 2).reshape(batch, seq, dim) @ p['wo'].T
    m = rms_norm(h1, p['mlp_norm'], 1e-5)
    return h1 + (torch.nn.functional.silu(m @ p['w_gate'].T) * (m @ p['w_up'].T)) @ p['w_down'].T


def attention(q, k, v):
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    seq = q.shape[2]
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    mask = torch.ones(seq, seq, dtype=torch.bool).tril()
    return scores.masked_fill(~mask, float('-inf')).softmax(-1) @ v


def loaded_blas():
    with open('/proc/self/maps') as maps:
        names = {line.split()[-1] for line in maps if '.so' in line}
    for name in sorted(names):
        base = name.rsplit('/', 1)[-1]
        if 'openblas' in base or 'libblas' in base or 'mkl' in base or 'blis' in base:
            return name
    return 'unknown'


def main():
    parser = argparse.ArgumentParser()
    for name, default in (('batch', 8), ('seq', 256), ('dim', 288), ('heads', 6), ('kv-heads', 6), ('ffn', 768), ('steps', 5)):
        parser.add_argument(f'--{name}', type=int, default=default)
    parser.add_argument('--threads', type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dim, head_dim = args.dim, args.dim // args.heads
    shapes = {
        'attention_norm': (dim,), 'wq': (dim, dim), 'wk': (args.kv_heads * head_dim, dim),
        'wv': (args.kv_heads * head_dim, dim), 'wo': (dim, dim), 'mlp_norm': (dim,),
        'w_gate': (args.ffn, dim), 'w_up': (args.ffn, dim), 'w_down': (dim, args.ffn),
    }
    p = {k: (torch.randn(*s) * s[-1] ** -0.5).requires_grad_() for k, s in shapes.items()}
    inverse = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(args.seq).float(), inverse)
    angles = torch.cat((angles, angles), -1)[None, :, None, :]
    cos, sin = angles.cos(), angles.sin()
    h = torch.randn(args.batch, args.seq, dim).requires_grad_()
    upstream = torch.randn(args.batch, args.seq, dim)

    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        out = layer(h, p, cos, sin, args)
        out.backward(upstream)
        elapsed = time.perf_counter() - start
        for t in [h, *p.values()]:
            t.grad = None
        if step > 0:  # the first step warms up allocators and kernels
            times.append(elapsed)
    ms = statistics.median(times) * 1000
    print(json.dumps({
        'ms': ms,
        'tokensPerSecond': args.batch * args.seq / (ms / 1000),
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'blas': loaded_blas(),
        'peakRssBytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == '__main__':
    main()
