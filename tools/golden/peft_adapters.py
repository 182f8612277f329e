#!/usr/bin/python3
"""Golden adapters and logits for @webtune/peft's interchange tests.

Writes under packages/peft/src/__fixtures__/:
  base/<model>/config.json + model.safetensors + golden.json   tiny random Llama-family models (F32)
  adapters/<case>/adapter_config.json + adapter_model.safetensors + golden.json
  pissa.json                                      a PiSSA initialisation of one matrix

Adapter files follow Hugging Face PEFT exactly (peft/utils/save_and_load.py,
get_peft_model_state_dict): tensors `base_model.model.<module>.lora_A.weight` [r, in],
`.lora_B.weight` [out, r], `.lora_magnitude_vector` [out] for DoRA, modules_to_save under the
module's own names, `__metadata__` {"format": "pt"}, no adapter name in the keys. The
adapter_config.json files carry keys newer PEFT versions write, which readers must ignore.

The `peft` package is not installed here, so its behaviour is written out below in plain torch,
float64, from peft/tuners/lora/layer.py and dora.py:
  LoRA:  y = W x + b + s * B (A x),            s = lora_alpha / r  (rsLoRA: / sqrt(r))
  DoRA:  y = W x + b + (m / n - 1) * (W x) + (m / n) * s * B (A x),   n = ||W + s B A|| per row
  target matching: regex strings full-match the module name; lists match names or ".suffix";
  layers_to_transform applies to lists; exclude_modules wins; rank_pattern / alpha_pattern keys
  match the end of the name (get_pattern_key: re.match(rf"(.*\\.)?({key})$", name)).
  PiSSA: V, S, Uh = svd(W); S_r = S[:r] / s; A = diag(sqrt(S_r)) Uh[:r]; B = V[:, :r] diag(sqrt(S_r));
  the base weight becomes W - s B A.

Run with Debian's PyTorch:  /usr/bin/python3 tools/golden/peft_adapters.py
"""
import json
import math
import os
import re
import shutil
import struct

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'packages', 'peft', 'src', '__fixtures__')

BASE = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=32, max_position_embeddings=64, rms_norm_eps=1e-6,
            rope_theta=10000.0, hidden_act='silu', bos_token_id=1, eos_token_id=2)

MODELS = {
    'llama': dict(BASE, architectures=['LlamaForCausalLM'], model_type='llama', tie_word_embeddings=False,
                  attention_bias=False),
    'qwen2': dict(BASE, architectures=['Qwen2ForCausalLM'], model_type='qwen2', tie_word_embeddings=True,
                  rope_theta=1000000.0),
}

INPUT_IDS = [[1, 5, 9, 2, 30, 17, 8, 3], [4, 4, 12, 31, 0, 7, 22, 19]]

# Keys newer PEFT versions write; a reader must ignore them.
NEWER_KEYS = {
    'auto_mapping': None, 'corda_config': None, 'eva_config': None, 'exclude_modules': None,
    'layer_replication': None, 'lora_bias': False, 'megatron_config': None, 'megatron_core': 'megatron.core',
    'loftq_config': {}, 'target_parameters': None, 'trainable_token_indices': None, 'use_qalora': False,
    'qalora_group_size': 16, 'runtime_config': {'ephemeral_gpu_offload': False}, 'alora_invocation_tokens': None,
    'ensure_weight_tying': False, 'a_key_from_the_future': [1, 2, 3],
}


def lora_config(**fields):
    config = dict(peft_type='LORA', task_type='CAUSAL_LM', base_model_name_or_path='tiny', revision=None,
                  r=8, lora_alpha=8, lora_dropout=0.0, target_modules=None, layers_to_transform=None,
                  layers_pattern=None, rank_pattern={}, alpha_pattern={}, bias='none', fan_in_fan_out=False,
                  modules_to_save=None, init_lora_weights=True, use_rslora=False, use_dora=False,
                  inference_mode=True)
    config.update(NEWER_KEYS)
    config.update(fields)
    return config


CASES = {
    # The most common adapter: q and v projections.
    'lora-qv': dict(model='llama', dtype='F32', config=lora_config(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'])),
    # A regular expression, per-module rank and alpha, rsLoRA; stored in F16.
    'lora-regex-patterns': dict(model='llama', dtype='F16', config=lora_config(
        r=4, lora_alpha=6, target_modules=r'.*\.(q_proj|o_proj|down_proj)', use_rslora=True,
        rank_pattern={'down_proj': 2}, alpha_pattern={r'layers\.1\.self_attn\.o_proj': 3}, lora_dropout=0.05)),
    # Suffixes restricted to layer 1, one module excluded.
    'lora-layers-exclude': dict(model='llama', dtype='F32', config=lora_config(
        r=2, lora_alpha=4, target_modules=['gate_proj', 'up_proj', 'k_proj'], layers_to_transform=[1],
        exclude_modules=['model.layers.1.self_attn.k_proj'])),
    # DoRA on every linear layer (all-linear as PEFT resolves it), q/k/v biases, tied head.
    'dora-all-linear': dict(model='qwen2', dtype='F32', config=lora_config(
        r=4, lora_alpha=8, use_dora=True,
        target_modules=['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'])),
    # modules_to_save: the tied head and the embedding trained whole, next to LoRA on q, v.
    'lora-modules-to-save': dict(model='qwen2', dtype='F32', config=lora_config(
        r=2, lora_alpha=2, target_modules=['q_proj', 'v_proj'], modules_to_save=['lm_head', 'embed_tokens'])),
}


MODULE_PARAMETERS = {'lm_head': 'lm_head.weight', 'embed_tokens': 'model.embed_tokens.weight'}


def head_dim(c):
    return c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']


def param_shapes(c):
    hidden, inter, hd = c['hidden_size'], c['intermediate_size'], head_dim(c)
    heads, kv = c['num_attention_heads'], c['num_key_value_heads']
    bias = c['architectures'][0] == 'Qwen2ForCausalLM'
    shapes = {'model.embed_tokens.weight': [c['vocab_size'], hidden]}
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}.'
        shapes[p + 'self_attn.q_proj.weight'] = [heads * hd, hidden]
        shapes[p + 'self_attn.k_proj.weight'] = [kv * hd, hidden]
        shapes[p + 'self_attn.v_proj.weight'] = [kv * hd, hidden]
        shapes[p + 'self_attn.o_proj.weight'] = [hidden, heads * hd]
        if bias:
            shapes[p + 'self_attn.q_proj.bias'] = [heads * hd]
            shapes[p + 'self_attn.k_proj.bias'] = [kv * hd]
            shapes[p + 'self_attn.v_proj.bias'] = [kv * hd]
        shapes[p + 'mlp.gate_proj.weight'] = [inter, hidden]
        shapes[p + 'mlp.up_proj.weight'] = [inter, hidden]
        shapes[p + 'mlp.down_proj.weight'] = [hidden, inter]
        shapes[p + 'input_layernorm.weight'] = [hidden]
        shapes[p + 'post_attention_layernorm.weight'] = [hidden]
    shapes['model.norm.weight'] = [hidden]
    if not c['tie_word_embeddings']:
        shapes['lm_head.weight'] = [c['vocab_size'], hidden]
    return shapes


def f32(t):
    """Rounded to float32 (what files and the GPU hold), back in float64."""
    return t.to(torch.float32).to(torch.float64)


def random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in param_shapes(c).items():
        if name.endswith('norm.weight'):
            t = 1 + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif name.endswith('.bias'):
            t = 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif name == 'model.embed_tokens.weight':
            t = 0.5 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            t = torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(shape[1])
        weights[name] = f32(t)
    return weights


def write_safetensors(path, tensors, dtype):
    torch_dtype = {'F32': torch.float32, 'F16': torch.float16}[dtype]
    header = {'__metadata__': {'format': 'pt'}}
    chunks, offset = [], 0
    for name in sorted(tensors):
        data = tensors[name].to(torch_dtype).contiguous().numpy().tobytes()
        header[name] = {'dtype': dtype, 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)


def stored(t, dtype):
    return t.to({'F32': torch.float32, 'F16': torch.float16}[dtype]).to(torch.float64)


# ---- PEFT's module selection (check_target_module_exists, get_pattern_key) ------------------

def linear_names(c):
    return sorted({n[:-len('.weight')] for n in param_shapes(c) if n.endswith('_proj.weight')},
                  key=lambda n: list(param_shapes(c)).index(n + '.weight'))


def is_target(config, key):
    exclude = config.get('exclude_modules')
    if exclude:
        if isinstance(exclude, str):
            if re.fullmatch(exclude, key):
                return False
        elif key in exclude or any(key.endswith('.' + e) for e in exclude):
            return False
    targets = config['target_modules']
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    if key in targets:
        return True
    found = any(key.endswith('.' + t) for t in targets)
    layers = config.get('layers_to_transform')
    if found and layers is not None:
        match = re.match(r'.*?\.[^.]*\.(?P<idx>\d+)\.', key)
        found = match is not None and int(match.group('idx')) in (layers if isinstance(layers, list) else [layers])
    return found


def pattern_key(keys, name):
    for key in keys:
        if re.match(rf'(.*\.)?({key})$', name):
            return key
    return name


def rank_alpha(config, name):
    r = config['rank_pattern'].get(pattern_key(config['rank_pattern'].keys(), name), config['r'])
    alpha = config['alpha_pattern'].get(pattern_key(config['alpha_pattern'].keys(), name), config['lora_alpha'])
    scaling = alpha / math.sqrt(r) if config['use_rslora'] else alpha / r
    return r, scaling


# ---- the forward pass (float64) with LoRA / DoRA / modules_to_save ----------------------------

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(c, w, adapters, ids):
    """adapters: module name -> dict(A, B, scaling, magnitude or None)."""
    hidden, heads, kv, hd = c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads'], head_dim(c)
    eps = c['rms_norm_eps']
    B, S = ids.shape
    inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(S, dtype=torch.float64), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((S, S), float('-inf'), dtype=torch.float64).triu(1)

    def lin(x, name):
        weight = w[name + '.weight']
        base = x @ weight.T
        y = base + w[name + '.bias'] if name + '.bias' in w else base
        lora = adapters.get(name)
        if lora is None:
            return y
        delta = (x @ lora['A'].T) @ lora['B'].T
        if lora['magnitude'] is None:
            return y + lora['scaling'] * delta
        norm = torch.linalg.norm(weight + lora['scaling'] * lora['B'] @ lora['A'], dim=1)
        factor = lora['magnitude'] / norm
        return y + (factor - 1) * base + factor * lora['scaling'] * delta

    x = w['model.embed_tokens.weight'][ids]
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}.'
        h = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
        q = lin(h, p + 'self_attn.q_proj').view(B, S, heads, hd).transpose(1, 2)
        k = lin(h, p + 'self_attn.k_proj').view(B, S, kv, hd).transpose(1, 2)
        v = lin(h, p + 'self_attn.v_proj').view(B, S, kv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // kv, dim=1)
        v = v.repeat_interleave(heads // kv, dim=1)
        out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1) @ v
        x = x + lin(out.transpose(1, 2).reshape(B, S, heads * hd), p + 'self_attn.o_proj')
        h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
        gate = torch.nn.functional.silu(lin(h, p + 'mlp.gate_proj'))
        x = x + lin(gate * lin(h, p + 'mlp.up_proj'), p + 'mlp.down_proj')
    x = rms_norm(x, w['model.norm.weight'], eps)
    head = w['lm_head.weight'] if 'lm_head.weight' in w else w['model.embed_tokens.weight']
    return x @ head.T


def write_json(path, value):
    with open(path, 'w') as f:
        json.dump(value, f, indent=2)
        f.write('\n')


def main():
    if os.path.isdir(OUT):
        for sub in ('base', 'adapters'):
            shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    ids = torch.tensor(INPUT_IDS)
    bases = {}
    for index, (name, c) in enumerate(MODELS.items()):
        folder = os.path.join(OUT, 'base', name)
        os.makedirs(folder, exist_ok=True)
        weights = random_weights(c, 7000 + index)
        write_safetensors(os.path.join(folder, 'model.safetensors'), weights, 'F32')
        write_json(os.path.join(folder, 'config.json'), dict(c, torch_dtype='float32'))
        bases[name] = weights
        logits = forward(c, weights, {}, ids)
        write_json(os.path.join(folder, 'golden.json'), {
            'description': f'{name}: logits of the base model without adapters (float64, tools/golden/peft_adapters.py)',
            'input_ids': INPUT_IDS,
            'shape': list(logits.shape),
            'logits': [float(f'{v:.8g}') for v in logits.flatten().tolist()],
        })

    for index, (case, spec) in enumerate(CASES.items()):
        c = MODELS[spec['model']]
        config = spec['config']
        weights = dict(bases[spec['model']])
        g = torch.Generator().manual_seed(9000 + index)
        tensors, adapters = {}, {}
        for name in linear_names(c):
            if config.get('modules_to_save') and any(name.endswith(m) for m in config['modules_to_save']):
                continue
            if not is_target(config, name):
                continue
            r, scaling = rank_alpha(config, name)
            out_features, in_features = weights[name + '.weight'].shape
            # A as PEFT draws it (Kaiming-uniform, bound 1/sqrt(in)); B non-zero, as after training.
            A = stored((torch.rand(r, in_features, generator=g, dtype=torch.float64) * 2 - 1) / math.sqrt(in_features), spec['dtype'])
            Bm = stored(0.3 * torch.randn(out_features, r, generator=g, dtype=torch.float64), spec['dtype'])
            prefix = f'base_model.model.{name}.'
            tensors[prefix + 'lora_A.weight'] = A
            tensors[prefix + 'lora_B.weight'] = Bm
            magnitude = None
            if config['use_dora']:
                norm = torch.linalg.norm(weights[name + '.weight'] + scaling * Bm @ A, dim=1)
                magnitude = stored(norm * (1 + 0.2 * torch.randn(out_features, generator=g, dtype=torch.float64)), spec['dtype'])
                tensors[prefix + 'lora_magnitude_vector'] = magnitude
            adapters[name] = dict(A=A, B=Bm, scaling=scaling, magnitude=magnitude)
        for module in config.get('modules_to_save') or []:
            # The trained copy of the module, saved under the module's own name. With a tied head
            # the copy of lm_head starts from the embedding and is its own tensor afterwards.
            full_name = MODULE_PARAMETERS[module]
            base_tensor = weights.get(full_name, weights['model.embed_tokens.weight'])
            trained = stored(base_tensor + 0.1 * torch.randn(base_tensor.shape, generator=g, dtype=torch.float64), spec['dtype'])
            tensors['base_model.model.' + full_name] = trained
            weights[full_name] = trained
        folder = os.path.join(OUT, 'adapters', case)
        os.makedirs(folder, exist_ok=True)
        write_safetensors(os.path.join(folder, 'adapter_model.safetensors'), tensors, spec['dtype'])
        write_json(os.path.join(folder, 'adapter_config.json'), config)
        logits = forward(c, weights, adapters, ids)
        base_logits = forward(c, bases[spec['model']], {}, ids)
        write_json(os.path.join(folder, 'golden.json'), {
            'description': f'{case}: logits of base model "{spec["model"]}" with this adapter (PEFT semantics, float64, '
                           'tools/golden/peft_adapters.py)',
            'base': spec['model'],
            'input_ids': INPUT_IDS,
            'adapted_modules': sorted(adapters),
            'shape': list(logits.shape),
            'logits': [float(f'{v:.8g}') for v in logits.flatten().tolist()],
            'max_change_from_base': float((logits - base_logits).abs().max()),
        })
        print(f'{case}: {len(adapters)} modules, {len(tensors)} tensors ({spec["dtype"]}), '
              f'max |logits - base| {float((logits - base_logits).abs().max()):.3f}')

    # PiSSA of one matrix, as peft/tuners/lora/layer.py pissa_init computes it.
    g = torch.Generator().manual_seed(31)
    W = f32(torch.randn(12, 10, generator=g, dtype=torch.float64))
    r, scaling = 3, 2.0
    V, S, Uh = torch.linalg.svd(W, full_matrices=False)
    Sr = S[:r] / scaling
    A = torch.diag(torch.sqrt(Sr)) @ Uh[:r]
    Bm = V[:, :r] @ torch.diag(torch.sqrt(Sr))
    residual = W - scaling * Bm @ A
    write_json(os.path.join(OUT, 'pissa.json'), {
        'description': 'PiSSA of a 12 x 10 matrix, r = 3, scaling = 2 (tools/golden/peft_adapters.py, float64)',
        'rows': 12, 'cols': 10, 'r': r, 'scaling': scaling,
        'weight': W.flatten().tolist(),
        'singular_values': S.tolist(),
        'update': (scaling * Bm @ A).flatten().tolist(),
        'residual': residual.flatten().tolist(),
    })
    print('pissa.json: singular values', [round(v, 4) for v in S.tolist()])


if __name__ == '__main__':
    main()
