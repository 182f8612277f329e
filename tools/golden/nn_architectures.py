#!/usr/bin/python3
"""Golden logits for @webtune/nn's architecture tests.

For each architecture (Llama with and without rope_scaling, Mistral, Qwen2, Qwen3) this writes a
tiny random-weight Hugging Face folder under packages/nn/src/__fixtures__/architectures/<name>/:
config.json, model.safetensors (F32, F16 or BF16 on disk, so loading converts), and golden.json
with input ids and the logits of a full forward pass computed here in float64 with PyTorch.

The forward pass below is written from the Hugging Face modeling code's semantics
(modeling_llama / mistral / qwen2 / qwen3 and modeling_rope_utils): pre-norm decoder layers,
RMSNorm, rotate-half RoPE with the rope_scaling types, grouped-query attention with a causal
mask, SwiGLU MLP, tied or untied head, Qwen2's q/k/v bias, Qwen3's per-head q/k RMSNorm.

Run with Debian's PyTorch:  /usr/bin/python3 tools/golden/nn_architectures.py
"""
import json
import math
import os
import struct

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'packages', 'nn', 'src', '__fixtures__', 'architectures')

BASE = dict(
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=64,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    hidden_act='silu',
    bos_token_id=1,
    eos_token_id=2,
    initializer_range=0.02,
)

MODELS = {
    'llama': dict(
        dtype='F32',
        config=dict(BASE, architectures=['LlamaForCausalLM'], model_type='llama', tie_word_embeddings=False,
                    attention_bias=False, rope_scaling=None),
    ),
    'llama3-rope': dict(
        dtype='BF16',
        config=dict(BASE, architectures=['LlamaForCausalLM'], model_type='llama', tie_word_embeddings=True,
                    rope_theta=500000.0, max_position_embeddings=32,
                    rope_scaling=dict(rope_type='llama3', factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                      original_max_position_embeddings=8)),
    ),
    'llama-linear-rope': dict(
        dtype='F32',
        weights_from='llama',
        config=dict(BASE, architectures=['LlamaForCausalLM'], model_type='llama', tie_word_embeddings=False,
                    rope_scaling=dict(type='linear', factor=2.0)),
    ),
    'llama-dynamic-rope': dict(
        dtype='F32',
        weights_from='llama',
        config=dict(BASE, architectures=['LlamaForCausalLM'], model_type='llama', tie_word_embeddings=False,
                    max_position_embeddings=8, rope_scaling=dict(rope_type='dynamic', factor=2.0)),
    ),
    'llama-yarn-rope': dict(
        dtype='F32',
        weights_from='llama',
        config=dict(BASE, architectures=['LlamaForCausalLM'], model_type='llama', tie_word_embeddings=False,
                    max_position_embeddings=32,
                    rope_scaling=dict(rope_type='yarn', factor=4.0, original_max_position_embeddings=8)),
    ),
    'mistral': dict(
        dtype='F16',
        config=dict(BASE, architectures=['MistralForCausalLM'], model_type='mistral', tie_word_embeddings=False,
                    sliding_window=4096, rope_theta=1000000.0),
    ),
    'qwen2': dict(
        dtype='BF16',
        config=dict(BASE, architectures=['Qwen2ForCausalLM'], model_type='qwen2', tie_word_embeddings=True,
                    rope_theta=1000000.0, sliding_window=32, use_sliding_window=False),
    ),
    'qwen3': dict(
        dtype='BF16',
        config=dict(BASE, architectures=['Qwen3ForCausalLM'], model_type='qwen3', tie_word_embeddings=True,
                    head_dim=16, attention_bias=False, rope_theta=1000000.0),
    ),
}

# Two rows of 12 tokens: long enough to pass the original context of the scaled-RoPE configs.
INPUT_IDS = [
    [1, 17, 42, 5, 63, 8, 8, 30, 11, 2, 50, 7],
    [1, 3, 9, 27, 81 % 64, 19, 57, 44, 0, 12, 36, 25],
]


def param_shapes(c):
    hidden, inter = c['hidden_size'], c['intermediate_size']
    heads, kv = c['num_attention_heads'], c['num_key_value_heads']
    hd = c.get('head_dim') or hidden // heads
    arch = c['architectures'][0]
    qkv_bias = arch == 'Qwen2ForCausalLM' or (arch in ('LlamaForCausalLM', 'Qwen3ForCausalLM') and c.get('attention_bias', False))
    o_bias = arch in ('LlamaForCausalLM', 'Qwen3ForCausalLM') and c.get('attention_bias', False)
    shapes = [('model.embed_tokens.weight', [c['vocab_size'], hidden])]
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}.'
        shapes += [
            (p + 'self_attn.q_proj.weight', [heads * hd, hidden]),
            (p + 'self_attn.k_proj.weight', [kv * hd, hidden]),
            (p + 'self_attn.v_proj.weight', [kv * hd, hidden]),
            (p + 'self_attn.o_proj.weight', [hidden, heads * hd]),
        ]
        if qkv_bias:
            shapes += [(p + 'self_attn.q_proj.bias', [heads * hd]), (p + 'self_attn.k_proj.bias', [kv * hd]),
                       (p + 'self_attn.v_proj.bias', [kv * hd])]
        if o_bias:
            shapes += [(p + 'self_attn.o_proj.bias', [hidden])]
        if arch == 'Qwen3ForCausalLM':
            shapes += [(p + 'self_attn.q_norm.weight', [hd]), (p + 'self_attn.k_norm.weight', [hd])]
        shapes += [
            (p + 'mlp.gate_proj.weight', [inter, hidden]),
            (p + 'mlp.up_proj.weight', [inter, hidden]),
            (p + 'mlp.down_proj.weight', [hidden, inter]),
            (p + 'input_layernorm.weight', [hidden]),
            (p + 'post_attention_layernorm.weight', [hidden]),
        ]
    shapes.append(('model.norm.weight', [hidden]))
    if not c.get('tie_word_embeddings', False):
        shapes.append(('lm_head.weight', [c['vocab_size'], hidden]))
    return shapes


def random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in param_shapes(c):
        if name.endswith('norm.weight'):
            t = 1 + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif name.endswith('.bias'):
            t = 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif name == 'model.embed_tokens.weight':
            t = 0.4 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            t = torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(shape[1])
        weights[name] = t
    return weights


def round_to(weights, dtype):
    """Weights as stored on disk (rounded to the dtype), and back in float64 for the reference."""
    torch_dtype = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}[dtype]
    stored = {name: t.to(torch_dtype) for name, t in weights.items()}
    return stored, {name: t.to(torch.float64) for name, t in stored.items()}


def write_safetensors(path, tensors, dtype):
    header = {'__metadata__': {'format': 'pt'}}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if dtype == 'BF16':
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)


# ---- the reference forward pass (float64) ------------------------------------------------------

def inv_freq_and_scale(c, seq_len):
    hd = c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']
    base = c['rope_theta']
    dim = hd
    scaling = c.get('rope_scaling') or {}
    kind = scaling.get('rope_type', scaling.get('type', 'default'))
    attention_scale = 1.0
    if kind == 'dynamic':
        max_pos = c['max_position_embeddings']
        factor = scaling['factor']
        length = max(seq_len, max_pos)
        base = base * ((factor * length / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if kind == 'linear':
        inv = inv / scaling['factor']
    elif kind == 'llama3':
        factor = scaling['factor']
        low, high = scaling['low_freq_factor'], scaling['high_freq_factor']
        old = scaling['original_max_position_embeddings']
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    elif kind == 'yarn':
        factor = scaling['factor']
        original = scaling.get('original_max_position_embeddings', c['max_position_embeddings'])
        beta_fast, beta_slow = scaling.get('beta_fast', 32), scaling.get('beta_slow', 1)

        def correction_dim(rotations):
            return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

        low = max(math.floor(correction_dim(beta_fast)), 0)
        high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
        extrapolation = 1 - ramp
        pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        inv = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
        attention_scale = scaling.get('attention_factor') or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
    return inv, attention_scale


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(c, w, ids):
    arch = c['architectures'][0]
    hidden, heads, kv = c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads']
    hd = c.get('head_dim') or hidden // heads
    eps = c['rms_norm_eps']
    B, S = ids.shape
    inv, attention_scale = inv_freq_and_scale(c, S)
    positions = torch.arange(S, dtype=torch.float64)
    freqs = torch.outer(positions, inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos() * attention_scale, emb.sin() * attention_scale  # [S, hd]
    mask = torch.full((S, S), float('-inf'), dtype=torch.float64).triu(1)

    def lin(x, name):
        y = x @ w[name + '.weight'].T
        if name + '.bias' in w:
            y = y + w[name + '.bias']
        return y

    x = w['model.embed_tokens.weight'][ids]
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}.'
        h = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
        q = lin(h, p + 'self_attn.q_proj').view(B, S, heads, hd)
        k = lin(h, p + 'self_attn.k_proj').view(B, S, kv, hd)
        v = lin(h, p + 'self_attn.v_proj').view(B, S, kv, hd)
        if arch == 'Qwen3ForCausalLM':
            q = rms_norm(q, w[p + 'self_attn.q_norm.weight'], eps)
            k = rms_norm(k, w[p + 'self_attn.k_norm.weight'], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, S, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // kv, dim=1)
        v = v.repeat_interleave(heads // kv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask
        out = torch.softmax(scores, dim=-1) @ v
        out = out.transpose(1, 2).reshape(B, S, heads * hd)
        x = x + lin(out, p + 'self_attn.o_proj')
        h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
        gate = torch.nn.functional.silu(lin(h, p + 'mlp.gate_proj'))
        x = x + lin(gate * lin(h, p + 'mlp.up_proj'), p + 'mlp.down_proj')
    x = rms_norm(x, w['model.norm.weight'], eps)
    head = w['model.embed_tokens.weight'] if c.get('tie_word_embeddings', False) else w['lm_head.weight']
    return x @ head.T


def main():
    os.makedirs(OUT, exist_ok=True)
    ids = torch.tensor(INPUT_IDS)
    names = list(MODELS)
    for name, spec in MODELS.items():
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        c = spec['config']
        # Variants that differ only in rope_scaling share the weights of the folder they name
        # (the test reads model.safetensors from there), which keeps the fixtures small.
        source = spec.get('weights_from', name)
        stored, reference = round_to(random_weights(c, 1000 + names.index(source)), spec['dtype'])
        if source == name:
            write_safetensors(os.path.join(folder, 'model.safetensors'), stored, spec['dtype'])
        elif os.path.exists(os.path.join(folder, 'model.safetensors')):
            os.remove(os.path.join(folder, 'model.safetensors'))
        with open(os.path.join(folder, 'config.json'), 'w') as f:
            json.dump(dict(c, torch_dtype={'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16'}[spec['dtype']]),
                      f, indent=2)
            f.write('\n')
        logits = forward(c, reference, ids)
        golden = {
            'description': f'{name}: logits of a full forward pass over input_ids, float64 PyTorch reference '
                           f'(tools/golden/nn_architectures.py), weights as stored ({spec["dtype"]})',
            'weights': f'../{source}/model.safetensors',
            'input_ids': INPUT_IDS,
            'shape': list(logits.shape),
            'logits': [float(f'{v:.7g}') for v in logits.flatten().tolist()],
        }
        with open(os.path.join(folder, 'golden.json'), 'w') as f:
            json.dump(golden, f, separators=(',', ':'))
            f.write('\n')
        print(f'{name}: {spec["dtype"]}, logits {list(logits.shape)}, |max| {logits.abs().max():.3f}')


if __name__ == '__main__':
    main()
