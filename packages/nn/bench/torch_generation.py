#!/usr/bin/python3
"""The CPU baseline of @webtune/nn's generation benchmark: the same decode loop in PyTorch.

A Llama forward pass with a KV cache (float32, batch 1): one prefill over the prompt, then
greedy decode steps of one token each, timed separately. Reads a JSON list of cases on stdin
({name, config, weights: path to model.safetensors or null for random, prompt_tokens,
new_tokens}) and prints one JSON object per case, plus which BLAS PyTorch loaded.

Run by bench/generation.mjs with Debian's PyTorch (/usr/bin/python3).
"""
import json
import math
import re
import struct
import sys
import time

import torch


def loaded_blas():
    try:
        with open('/proc/self/maps') as maps:
            names = sorted({m.group(1) for m in re.finditer(r'/(lib(?:open)?blas[^/\s]*\.so[^/\s]*)', maps.read())})
        return ', '.join(names) or 'none found in /proc/self/maps'
    except OSError:
        return 'unknown'


def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        assert info['dtype'] == 'F32', 'the benchmark reads F32 checkpoints'
        out[name] = torch.frombuffer(bytearray(raw[8 + n + begin:8 + n + end]), dtype=torch.float32).reshape(info['shape'])
    return out


def random_weights(c):
    g = torch.Generator().manual_seed(0)
    hidden, inter, heads, kv = c['hidden_size'], c['intermediate_size'], c['num_attention_heads'], c['num_key_value_heads']
    hd = hidden // heads
    w = {'model.embed_tokens.weight': torch.randn(c['vocab_size'], hidden, generator=g) * 0.02,
         'model.norm.weight': torch.ones(hidden)}
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}.'
        for name, shape in [('self_attn.q_proj', (heads * hd, hidden)), ('self_attn.k_proj', (kv * hd, hidden)),
                            ('self_attn.v_proj', (kv * hd, hidden)), ('self_attn.o_proj', (hidden, heads * hd)),
                            ('mlp.gate_proj', (inter, hidden)), ('mlp.up_proj', (inter, hidden)),
                            ('mlp.down_proj', (hidden, inter))]:
            w[p + name + '.weight'] = torch.randn(*shape, generator=g) * 0.02
        w[p + 'input_layernorm.weight'] = torch.ones(hidden)
        w[p + 'post_attention_layernorm.weight'] = torch.ones(hidden)
    if not c.get('tie_word_embeddings', False):
        w['lm_head.weight'] = torch.randn(c['vocab_size'], hidden, generator=g) * 0.02
    return w


class Model:
    def __init__(self, c, w):
        self.c, self.w = c, w
        self.heads, self.kv = c['num_attention_heads'], c['num_key_value_heads']
        self.hd = c.get('head_dim') or c['hidden_size'] // self.heads
        self.eps = c['rms_norm_eps']
        inv = 1.0 / (c.get('rope_theta', 10000.0) ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        freqs = torch.outer(torch.arange(c['max_position_embeddings'], dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.head = w.get('lm_head.weight', w['model.embed_tokens.weight'])

    def norm(self, x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def forward(self, ids, cache, start):
        """ids [1, S] -> logits of the last position; appends to cache (a list of (k, v) per layer)."""
        w, S = self.w, ids.shape[1]
        cos, sin = self.cos[start:start + S], self.sin[start:start + S]
        x = w['model.embed_tokens.weight'][ids]
        for i in range(self.c['num_hidden_layers']):
            p = f'model.layers.{i}.'
            h = self.norm(x, w[p + 'input_layernorm.weight'])
            q = (h @ w[p + 'self_attn.q_proj.weight'].T).view(1, S, self.heads, self.hd).transpose(1, 2)
            k = (h @ w[p + 'self_attn.k_proj.weight'].T).view(1, S, self.kv, self.hd).transpose(1, 2)
            v = (h @ w[p + 'self_attn.v_proj.weight'].T).view(1, S, self.kv, self.hd).transpose(1, 2)
            q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
            if len(cache) > i:
                k = torch.cat((cache[i][0], k), dim=2)
                v = torch.cat((cache[i][1], v), dim=2)
                cache[i] = (k, v)
            else:
                cache.append((k, v))
            k = k.repeat_interleave(self.heads // self.kv, dim=1)
            v = v.repeat_interleave(self.heads // self.kv, dim=1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
            if S > 1:
                total = k.shape[2]
                mask = torch.full((S, total), float('-inf')).triu(total - S + 1)
                scores = scores + mask
            out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(1, S, self.heads * self.hd)
            x = x + out @ w[p + 'self_attn.o_proj.weight'].T
            h = self.norm(x, w[p + 'post_attention_layernorm.weight'])
            gate = torch.nn.functional.silu(h @ w[p + 'mlp.gate_proj.weight'].T)
            x = x + (gate * (h @ w[p + 'mlp.up_proj.weight'].T)) @ w[p + 'mlp.down_proj.weight'].T
        x = self.norm(x[:, -1:], w['model.norm.weight'])
        return x @ self.head.T


def run(case):
    c = case['config']
    w = read_safetensors(case['weights']) if case.get('weights') else random_weights(c)
    model = Model(c, w)
    prompt = torch.tensor([case['prompt_ids']])
    new_tokens = case['new_tokens']
    results = {}
    with torch.inference_mode():
        for _ in range(2):  # the first run warms up
            cache = []
            started = time.perf_counter()
            logits = model.forward(prompt, cache, 0)
            prefill = time.perf_counter() - started
            token = int(logits[0, -1].argmax())
            started = time.perf_counter()
            for step in range(new_tokens - 1):
                logits = model.forward(torch.tensor([[token]]), cache, prompt.shape[1] + step)
                token = int(logits[0, -1].argmax())
            decode = time.perf_counter() - started
            results = {
                'name': case['name'],
                'prefill_tokens_per_s': prompt.shape[1] / prefill,
                'decode_tokens_per_s': (new_tokens - 1) / decode,
            }
    return results


def main():
    cases = json.load(sys.stdin)
    threads = int(cases[0].get('threads', 1)) if cases else 1
    torch.set_num_threads(threads)
    out = {'torch': torch.__version__, 'threads': threads, 'blas': loaded_blas(), 'cases': [run(c) for c in cases]}
    out['blas'] = loaded_blas()
    print(json.dumps(out))


if __name__ == '__main__':
    main()
