#!/usr/bin/python3
"""The PyTorch side of packages/train/bench/lora-sft.mjs: one LoRA SFT training step (forward,
backward, AdamW on the LoRA parameters, base weights frozen) of a Llama-shaped model on the CPU,
timed the same way as the WebGPU trainer. Run with Debian's PyTorch and OpenBLAS:

    /usr/bin/python3 packages/train/bench/lora_sft_torch.py '{"hidden":64,...}'

Prints one JSON line: tokens/s (median over the timed steps), the step time, peak resident
memory, the BLAS library loaded and the thread count. The model is written out below (RMSNorm,
rotate-half RoPE, grouped-query attention, SwiGLU, tied head), with LoRA (r, alpha) on every
linear layer but the head, like `target_modules: all-linear`.
"""

import json
import math
import re
import resource
import sys
import time

import torch
import torch.nn.functional as F


def rms_norm(x, weight, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LoraLinear(torch.nn.Module):
    def __init__(self, fan_in, fan_out, r, alpha):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fan_out, fan_in) * 0.02, requires_grad=False)
        self.lora_a = torch.nn.Parameter(torch.empty(r, fan_in))
        torch.nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.lora_b = torch.nn.Parameter(torch.zeros(fan_out, r))
        self.scale = alpha / r

    def forward(self, x):
        return x @ self.weight.T + (x @ self.lora_a.T @ self.lora_b.T) * self.scale


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h, d = c['hidden'], c['head_dim']
        self.heads, self.kv_heads, self.head_dim = c['heads'], c['kv_heads'], d
        lora = lambda i, o: LoraLinear(i, o, c['r'], c['alpha'])
        self.q, self.k, self.v = lora(h, self.heads * d), lora(h, self.kv_heads * d), lora(h, self.kv_heads * d)
        self.o = lora(self.heads * d, h)
        self.gate, self.up, self.down = lora(h, c['intermediate']), lora(h, c['intermediate']), lora(c['intermediate'], h)
        self.norm1 = torch.nn.Parameter(torch.ones(h), requires_grad=False)
        self.norm2 = torch.nn.Parameter(torch.ones(h), requires_grad=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        a = rms_norm(x, self.norm1)
        q = self.q(a).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(a).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(a).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.o(o)
        m = rms_norm(x, self.norm2)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Model(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = torch.nn.Parameter(torch.randn(c['vocab'], c['hidden']) * 0.02, requires_grad=False)
        self.blocks = torch.nn.ModuleList([Block(c) for _ in range(c['layers'])])
        self.norm = torch.nn.Parameter(torch.ones(c['hidden']), requires_grad=False)
        d = c['head_dim']
        inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2).float() / d))
        angles = torch.outer(torch.arange(c['seq']).float(), inv)
        angles = torch.cat((angles, angles), -1)
        self.cos, self.sin = angles.cos(), angles.sin()
        self.mask = torch.full((c['seq'], c['seq']), float('-inf')).triu(1)

    def forward(self, ids, labels):
        x = self.embed[ids]
        for block in self.blocks:
            x = block(x, self.cos, self.sin, self.mask)
        logits = rms_norm(x, self.norm) @ self.embed.T
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def blas_library():
    maps = open('/proc/self/maps').read()
    found = sorted(set(re.findall(r'/\S*lib(?:open)?blas\S*\.so\S*', maps)))
    return found[-1] if found else 'unknown'


def main():
    c = json.loads(sys.argv[1])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    torch.manual_seed(0)
    torch.set_num_threads(c.get('threads', 1))
    model = Model(c)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.0)
    ids = torch.randint(0, c['vocab'], (c['batch'], c['seq']))
    times = []
    for step in range(c['warmup'] + c['steps']):
        began = time.perf_counter()
        loss = model(ids, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss)
        if step >= c['warmup']:
            times.append(time.perf_counter() - began)
    times.sort()
    median = times[len(times) // 2]
    tokens = c['batch'] * c['seq']
    print(json.dumps({
        'tokens_per_second': tokens / median,
        'step_seconds': median,
        'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        'baseline_rss_bytes': baseline,
        'blas': blas_library(),
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'trainable_parameters': sum(p.numel() for p in trainable),
    }))


if __name__ == '__main__':
    main()
