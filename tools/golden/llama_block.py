#!/usr/bin/python3
"""Golden values for @webtune/tensors autograd: loss and every gradient of one small Llama
decoder block, computed by PyTorch in float64.

Run with Debian's PyTorch (`apt-get install python3-torch`):

    /usr/bin/python3 tools/golden/llama_block.py

It writes packages/tensors/src/__fixtures__/llama-block.json, which the test
packages/tensors/src/autograd/llama-block.test.ts reads (the test suite needs no Python).

The block, written out so the TypeScript side can follow it line by line:
  h0     = embedding[ids]                                   ids: [B, T]
  a      = rms_norm(h0) * attention_norm                    eps 1e-5, over the last axis
  q,k,v  = a @ wq.T, a @ wk.T, a @ wv.T                     heads H, key/value heads KV (GQA)
  q,k    = rotary(q), rotary(k)                             'half' style (rotate_half), base 10000
  o      = causal softmax(q k^T / sqrt(hd)) v               query head h reads kv head h // (H / KV)
  h1     = h0 + o @ wo.T
  m      = rms_norm(h1) * mlp_norm
  h2     = h1 + (silu(m @ w_gate.T) * (m @ w_up.T)) @ w_down.T
  logits = (rms_norm(h2) * final_norm) @ head.T             head = lm_head (untied) or embedding (tied)
  loss   = cross_entropy(logits, labels, ignore_index=-100), mean over the labels not ignored

Weights are drawn in float32 (so a float32 GPU gets exactly the same inputs) and the whole
computation runs in float64.
"""

import json
import os
import sys

import torch

BATCH, SEQ, DIM, HEADS, KV_HEADS, FFN, VOCAB = 2, 7, 32, 4, 2, 48, 40
HEAD_DIM = DIM // HEADS
EPS = 1e-5
ROPE_BASE = 10000.0
IGNORE = -100

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'packages', 'tensors', 'src', '__fixtures__', 'llama-block.json')


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary(x, cos, sin):
    # x: [B, T, heads, hd]; cos/sin: [T, hd] (each frequency repeated for both halves).
    return x * cos[None, :, None, :] + rotate_half(x) * sin[None, :, None, :]


def rope_tables():
    inverse = 1.0 / (ROPE_BASE ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM))
    angles = torch.outer(torch.arange(SEQ, dtype=torch.float64), inverse)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def attention(q, k, v):
    # q: [B, T, H, hd], k/v: [B, T, KV, hd] -> [B, T, H, hd]
    group = HEADS // KV_HEADS
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / HEAD_DIM**0.5
    mask = torch.ones(SEQ, SEQ, dtype=torch.bool).tril()
    scores = scores.masked_fill(~mask, float('-inf'))
    return (scores.softmax(-1) @ v).transpose(1, 2)


def block(params, ids, labels, tied):
    cos, sin = rope_tables()
    h0 = params['embedding'][ids]
    a = rms_norm(h0, params['attention_norm'])
    q = (a @ params['wq'].T).view(BATCH, SEQ, HEADS, HEAD_DIM)
    k = (a @ params['wk'].T).view(BATCH, SEQ, KV_HEADS, HEAD_DIM)
    v = (a @ params['wv'].T).view(BATCH, SEQ, KV_HEADS, HEAD_DIM)
    q, k = rotary(q, cos, sin), rotary(k, cos, sin)
    o = attention(q, k, v).reshape(BATCH, SEQ, DIM)
    h1 = h0 + o @ params['wo'].T
    m = rms_norm(h1, params['mlp_norm'])
    mlp = (torch.nn.functional.silu(m @ params['w_gate'].T) * (m @ params['w_up'].T)) @ params['w_down'].T
    h2 = h1 + mlp
    head = params['embedding'] if tied else params['lm_head']
    logits = rms_norm(h2, params['final_norm']) @ head.T
    return torch.nn.functional.cross_entropy(logits.view(-1, VOCAB), labels.view(-1), ignore_index=IGNORE)


def make_params(generator):
    def normal(*shape, std):
        return (torch.randn(*shape, generator=generator, dtype=torch.float32) * std).double()

    def norm_weight():
        return (1 + 0.1 * torch.randn(DIM, generator=generator, dtype=torch.float32)).double()

    return {
        'embedding': normal(VOCAB, DIM, std=0.5),
        'attention_norm': norm_weight(),
        'wq': normal(DIM, DIM, std=DIM**-0.5),
        'wk': normal(KV_HEADS * HEAD_DIM, DIM, std=DIM**-0.5),
        'wv': normal(KV_HEADS * HEAD_DIM, DIM, std=DIM**-0.5),
        'wo': normal(DIM, DIM, std=DIM**-0.5),
        'mlp_norm': norm_weight(),
        'w_gate': normal(FFN, DIM, std=DIM**-0.5),
        'w_up': normal(FFN, DIM, std=DIM**-0.5),
        'w_down': normal(DIM, FFN, std=FFN**-0.5),
        'final_norm': norm_weight(),
        'lm_head': normal(VOCAB, DIM, std=DIM**-0.5),
    }


def as_list(tensor):
    # float32 inputs are written with 9 significant digits (exact round trip); float64 results with 17.
    return [float(f'{x:.17g}') for x in tensor.reshape(-1).tolist()]


def main():
    generator = torch.Generator().manual_seed(1234)
    params = make_params(generator)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    labels = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    labels[0, 0] = IGNORE
    labels[1, 3] = IGNORE
    labels[1, 6] = IGNORE
    cases = {}
    for name, tied in (('untied', False), ('tied', True)):
        leaves = {key: value.clone().requires_grad_(not (tied and key == 'lm_head')) for key, value in params.items()}
        loss = block(leaves, ids, labels, tied)
        loss.backward()
        cases[name] = {
            'loss': loss.item(),
            'gradients': {
                key: as_list(leaf.grad) for key, leaf in leaves.items() if leaf.grad is not None
            },
        }
    fixture = {
        'generator': 'tools/golden/llama_block.py',
        'torch': torch.__version__,
        'config': {
            'batch': BATCH, 'seq': SEQ, 'dim': DIM, 'heads': HEADS, 'kvHeads': KV_HEADS,
            'headDim': HEAD_DIM, 'ffn': FFN, 'vocab': VOCAB, 'eps': EPS, 'ropeBase': ROPE_BASE,
            'ignoreIndex': IGNORE,
        },
        'ids': ids.reshape(-1).tolist(),
        'labels': labels.reshape(-1).tolist(),
        'shapes': {key: list(value.shape) for key, value in params.items()},
        'params': {key: [float(f'{x:.9g}') for x in value.reshape(-1).tolist()] for key, value in params.items()},
        'cases': cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as handle:
        json.dump(fixture, handle, separators=(',', ':'))
        handle.write('\n')
    print(f'wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes); '
          f'untied loss {cases["untied"]["loss"]:.6f}, tied loss {cases["tied"]["loss"]:.6f}', file=sys.stderr)


if __name__ == '__main__':
    main()
