#!/usr/bin/env python3
"""Adapters made by Hugging Face PEFT itself, and their logits, for @webtune/peft's interchange tests.

Writes under packages/peft/src/__fixtures__/:
  base/<model>/config.json + model.safetensors + golden.json   tiny random Llama and Qwen2 models (F32)
  adapters/<case>/adapter_config.json + adapter_model.safetensors + golden.json
  pissa.json                                                   PEFT's PiSSA initialisation of one matrix

Every adapter is made by `peft.get_peft_model` on the Transformers model and written by
`PeftModel.save_pretrained`; golden.json holds the logits of that PeftModel, run in float64 by
Transformers + PEFT. The cases cover what PEFT writes: plain LoRA, a regular expression in
target_modules with rank_pattern / alpha_pattern and rsLoRA (stored in F16), layers_to_transform with
exclude_modules, DoRA on every linear layer (all-linear), modules_to_save (the tied head and the
embedding trained whole) and a PiSSA adapter saved converted to plain LoRA
(save_pretrained(path_initial_model_for_weight_conversion=...)). The adapters' factors are random
(init_lora_weights=False, or the PiSSA factors moved), as after training: a zero lora_B would prove
nothing. The only edits to PEFT's files: adapter_config.json is written with sorted keys, a sorted
target_modules list and base_model_name_or_path "tiny", and two cases carry a key from the future
that readers must ignore.

Run (about 6 s of CPU time, 10 s to 18 s of wall time on a shared 2-core machine; the outputs are byte-identical from run to run: fixed seeds, one thread,
deterministic algorithms, sorted keys):
    python -m venv .venv && .venv/bin/pip install -r tools/golden/requirements.txt
    .venv/bin/python tools/golden/peft_adapters.py
"""
import json
import math
import os
import shutil
import struct
import tempfile

import peft
import torch
import transformers
from safetensors.torch import load_file, save_file

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
MODEL_CLASSES = {
    'llama': (transformers.LlamaConfig, transformers.LlamaForCausalLM),
    'qwen2': (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
}

INPUT_IDS = [[1, 5, 9, 2, 30, 17, 8, 3], [4, 4, 12, 31, 0, 7, 22, 19]]

CASES = {
    # The most common adapter: q and v projections. Its config (and the next one's) carries a key from the future.
    'lora-qv': dict(model='llama', dtype=torch.float32, future_key=True,
                    config=dict(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'])),
    # A regular expression, per-module rank and alpha, rsLoRA; stored in F16.
    'lora-regex-patterns': dict(model='llama', dtype=torch.float16, future_key=True, config=dict(
        r=4, lora_alpha=6, target_modules=r'.*\.(q_proj|o_proj|down_proj)', use_rslora=True,
        rank_pattern={'down_proj': 2}, alpha_pattern={r'layers\.1\.self_attn\.o_proj': 3}, lora_dropout=0.05)),
    # Suffixes restricted to layer 1, one module excluded.
    'lora-layers-exclude': dict(model='llama', dtype=torch.float32, config=dict(
        r=2, lora_alpha=4, target_modules=['gate_proj', 'up_proj', 'k_proj'], layers_to_transform=[1],
        exclude_modules=['model.layers.1.self_attn.k_proj'])),
    # DoRA on every linear layer (all-linear, resolved by PEFT), q/k/v biases, tied head.
    'dora-all-linear': dict(model='qwen2', dtype=torch.float32, config=dict(
        r=4, lora_alpha=8, use_dora=True, target_modules='all-linear')),
    # modules_to_save: the tied head and the embedding trained whole, next to LoRA on q, v.
    'lora-modules-to-save': dict(model='qwen2', dtype=torch.float32, config=dict(
        r=2, lora_alpha=2, target_modules=['q_proj', 'v_proj'], modules_to_save=['lm_head', 'embed_tokens'])),
    # PiSSA (r 2), "trained", saved converted to a plain rank-4 LoRA for the untouched base model.
    'pissa-converted': dict(model='llama', dtype=torch.float32, pissa=True, config=dict(
        r=2, lora_alpha=4, target_modules=['q_proj', 'down_proj'], init_lora_weights='pissa')),
}


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


def random_weights(c, seed):
    """Seeded float32 weights (drawn in float64, rounded to what the file holds)."""
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
        weights[name] = t.to(torch.float32)
    return weights


def write_safetensors(path, tensors):
    header = {'__metadata__': {'format': 'pt'}}
    chunks, offset = [], 0
    for name in sorted(tensors):
        data = tensors[name].contiguous().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)


def write_json(path, value):
    with open(path, 'w') as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write('\n')


def hf_model(name, weights):
    """The Transformers model of a fixture base, float32, eager attention."""
    config_class, model_class = MODEL_CLASSES[name]
    fields = {k: v for k, v in MODELS[name].items() if k not in ('architectures', 'model_type')}
    config = config_class(**fields)
    config._attn_implementation = 'eager'
    model = model_class(config).eval()
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected and all(k == 'lm_head.weight' for k in missing), (missing, unexpected)
    return model


def logits64(model, ids):
    """Logits of a float64 copy of the model (the model itself is left in float32)."""
    with torch.no_grad():
        model.double()
        logits = model(input_ids=ids).logits
        model.float()
    return logits


def g8(t):
    return [float(f'{v:.8g}') for v in t.flatten().tolist()]


def randomize_adapter(adapted, g, dtype):
    """Random factors (and DoRA magnitudes, modules_to_save copies), as after training, rounded to `dtype`."""
    with torch.no_grad():
        for name, parameter in sorted(adapted.named_parameters()):
            if 'lora_A' in name or 'lora_B' in name:
                parameter.add_(0.2 * torch.randn(parameter.shape, generator=g, dtype=torch.float64).float())
            elif 'lora_magnitude_vector' in name:
                parameter.mul_(1 + 0.2 * torch.randn(parameter.shape, generator=g, dtype=torch.float64).float())
            elif 'modules_to_save' in name:
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=g, dtype=torch.float64).float())
            else:
                continue
            parameter.copy_(parameter.to(dtype).float())


def save_adapter(adapted, folder, dtype, future_key, initial=None):
    """PeftModel.save_pretrained into a scratch folder; the two files copied, the config normalised."""
    with tempfile.TemporaryDirectory() as scratch:
        if dtype != torch.float32:
            for name, parameter in adapted.named_parameters():
                if parameter.requires_grad:
                    parameter.data = parameter.data.to(dtype)
        kwargs = {'path_initial_model_for_weight_conversion': initial} if initial else {}
        adapted.save_pretrained(scratch, **kwargs)
        for name, parameter in adapted.named_parameters():
            parameter.data = parameter.data.float()
        shutil.copyfile(os.path.join(scratch, 'adapter_model.safetensors'),
                        os.path.join(folder, 'adapter_model.safetensors'))
        with open(os.path.join(scratch, 'adapter_config.json')) as handle:
            config = json.load(handle)
    config['base_model_name_or_path'] = 'tiny'
    # PEFT keeps target_modules (and modules_to_save) in sets: sorted, the file is the same every run.
    for key in ('target_modules', 'modules_to_save'):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    if future_key:
        config['a_key_from_the_future'] = [1, 2, 3]
    write_json(os.path.join(folder, 'adapter_config.json'), config)
    return config


def pissa_matrix():
    """PEFT's PiSSA of one 12 x 10 matrix (a Linear adapted with init_lora_weights='pissa')."""
    g = torch.Generator().manual_seed(31)
    W = torch.randn(12, 10, generator=g, dtype=torch.float64).to(torch.float32)
    r, alpha = 3, 6
    module = torch.nn.Sequential()
    module.add_module('linear', torch.nn.Linear(10, 12, bias=False))
    with torch.no_grad():
        module.linear.weight.copy_(W)
    adapted = peft.get_peft_model(module, peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=['linear'],
                                                          init_lora_weights='pissa'))
    layer = adapted.base_model.model.linear
    scaling = layer.scaling['default']
    A = layer.lora_A['default'].weight.detach().double()
    B = layer.lora_B['default'].weight.detach().double()
    residual = layer.base_layer.weight.detach().double()
    W64 = W.double()
    singular_values = torch.linalg.svdvals(W64)
    write_json(os.path.join(OUT, 'pissa.json'), {
        'description': f'PiSSA of a 12 x 10 matrix, r = 3, lora_alpha 6 (scaling 2), made by peft {peft.__version__} '
                       '(init_lora_weights="pissa", an SVD in float32); singular values from torch.linalg.svdvals '
                       'in float64 (tools/golden/peft_adapters.py)',
        'rows': 12, 'cols': 10, 'r': r, 'scaling': scaling,
        'weight': W64.flatten().tolist(),
        'singular_values': singular_values.tolist(),
        'update': (scaling * B @ A).flatten().tolist(),
        'residual': residual.flatten().tolist(),
    })
    exact = torch.linalg.svd(W64, full_matrices=False)
    best = exact.U[:, :r] @ torch.diag(exact.S[:r]) @ exact.Vh[:r]
    print(f'pissa.json: PEFT s B A differs from the float64 rank-3 SVD by {float((scaling * B @ A - best).abs().max()):.2e}')


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for sub in ('base', 'adapters'):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    ids = torch.tensor(INPUT_IDS)
    bases, base_logits = {}, {}
    for index, (name, c) in enumerate(MODELS.items()):
        folder = os.path.join(OUT, 'base', name)
        os.makedirs(folder, exist_ok=True)
        weights = random_weights(c, 7000 + index)
        write_safetensors(os.path.join(folder, 'model.safetensors'), weights)
        write_json(os.path.join(folder, 'config.json'), dict(c, torch_dtype='float32'))
        bases[name] = weights
        base_logits[name] = logits64(hf_model(name, weights), ids)
        write_json(os.path.join(folder, 'golden.json'), {
            'description': f'{name}: logits of the base model without adapters, transformers '
                           f'{transformers.__version__} in float64 (tools/golden/peft_adapters.py)',
            'input_ids': INPUT_IDS,
            'shape': list(base_logits[name].shape),
            'logits': g8(base_logits[name]),
        })

    for index, (case, spec) in enumerate(CASES.items()):
        torch.manual_seed(9000 + index)
        g = torch.Generator().manual_seed(9000 + index)
        model = hf_model(spec['model'], bases[spec['model']])
        settings = dict(spec['config'])
        settings.setdefault('init_lora_weights', False)
        adapted = peft.get_peft_model(model, peft.LoraConfig(task_type='CAUSAL_LM', **settings))
        folder = os.path.join(OUT, 'adapters', case)
        os.makedirs(folder, exist_ok=True)
        initial = None
        with tempfile.TemporaryDirectory() as scratch:
            if spec.get('pissa'):
                # PEFT's recipe: save the initial PiSSA adapter as if it were a plain one, then train.
                initial = os.path.join(scratch, 'initial')
                adapted.peft_config['default'].init_lora_weights = True
                adapted.save_pretrained(initial)
                adapted.peft_config['default'].init_lora_weights = 'pissa'
            randomize_adapter(adapted, g, spec['dtype'])
            adapted.eval()
            logits = logits64(adapted, ids)
            config = save_adapter(adapted, folder, spec['dtype'], spec.get('future_key', False), initial)
        adapted_modules = sorted(n.replace('base_model.model.', '') for n, m in adapted.named_modules()
                                 if isinstance(m, peft.tuners.lora.LoraLayer))
        saved = load_file(os.path.join(folder, 'adapter_model.safetensors'))
        change = float((logits - base_logits[spec['model']]).abs().max())
        write_json(os.path.join(folder, 'golden.json'), {
            'description': f'{case}: logits of base model "{spec["model"]}" with this adapter, made and saved by '
                           f'peft {peft.__version__}, run by transformers {transformers.__version__} + peft in '
                           'float64 (tools/golden/peft_adapters.py)',
            'base': spec['model'],
            'input_ids': INPUT_IDS,
            'adapted_modules': adapted_modules,
            'saved_rank': config['r'],
            'shape': list(logits.shape),
            'logits': g8(logits),
            'max_change_from_base': float(f'{change:.6g}'),
        })
        print(f'{case}: {len(adapted_modules)} modules, {len(saved)} tensors '
              f'({sorted({str(t.dtype) for t in saved.values()})}), r {config["r"]}, max |logits - base| {change:.3f}')

    pissa_matrix()


if __name__ == '__main__':
    main()
