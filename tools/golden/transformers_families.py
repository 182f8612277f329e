#!/usr/bin/env python3
"""Goldens from Hugging Face Transformers and PEFT themselves for @webtune/nn and @webtune/peft.

For every architecture webtune runs (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3,
Phi-4-mini, SmolLM3) this builds a tiny random-weight model with `transformers`, with every
feature of its family switched on (soft-capping, sliding windows shorter than the test sequence,
local/global layers with two RoPE bases, LongRoPE past its short context, partial rotary, NoPE
layers), saves it with `save_pretrained` (config.json + model.safetensors) and records, in
golden.json:

- the logits of a full forward pass over two rows of 16 tokens, computed in float64 (the model
  cast with `.double()`; RoPE tables stay float32 inside Transformers, as they always are);
- the per-token loss (-log p(next token)) and its mean, in float64;
- 64 greedy tokens from `generate` (float64, KV cache) after a 4-token prompt, with the smallest
  gap between the best and second-best logit along the way (how far from a tie the run is); for
  the LongRoPE models, greedy over full forward passes (see greedy_full_passes' caller);
- one LoRA step made with `peft` (r 4, every linear layer, both factors random): the adapter as
  PEFT saves it and the gradients of the mean next-token loss with respect to every lora_A and
  lora_B, in float64;
- for Gemma 2/3, Phi-3, Phi-4-mini and SmolLM3, a DoRA adapter made by `peft` (magnitudes moved
  off their initial norms) and the adapted model's float64 logits (peft/<name>/dora/).

Outputs: packages/nn/src/__fixtures__/transformers/<name>/{config.json, model.safetensors,
golden.json} and packages/peft/src/__fixtures__/transformers/<name>/{config.json,
model.safetensors, adapter_config.json, adapter_model.safetensors, lora-golden.json} (the base
model files are the same bytes in both, so git stores them once).

Run (about 12 s of CPU time, 20 s to 70 s of wall time on a shared 2-core machine; the outputs are
byte-identical from run to run: fixed seeds, sorted keys, one thread, deterministic algorithms):
    python -m venv .venv && .venv/bin/pip install -r tools/golden/requirements.txt
    .venv/bin/python tools/golden/transformers_families.py
"""
import json
import math
import os
import shutil
import tempfile
import time

import peft
import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
NN_OUT = os.path.join(ROOT, 'packages', 'nn', 'src', '__fixtures__', 'transformers')
PEFT_OUT = os.path.join(ROOT, 'packages', 'peft', 'src', '__fixtures__', 'transformers')

COMMON = dict(
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)

# name -> (config class, model class, config fields, safetensors dtype on disk, description)
MODELS = {
    'llama': (
        transformers.LlamaConfig, transformers.LlamaForCausalLM,
        dict(COMMON, tie_word_embeddings=False, rope_theta=10000.0, attention_bias=True),
        torch.float32, 'Llama, untied head, attention_bias',
    ),
    'mistral': (
        transformers.MistralConfig, transformers.MistralForCausalLM,
        dict(COMMON, tie_word_embeddings=False, rope_theta=1000000.0, sliding_window=4),
        torch.float16, 'Mistral with a sliding window of 4 (shorter than the 16-token rows)',
    ),
    'qwen2': (
        transformers.Qwen2Config, transformers.Qwen2ForCausalLM,
        dict(COMMON, tie_word_embeddings=True, rope_theta=1000000.0),
        torch.bfloat16, 'Qwen2: q/k/v bias, tied head',
    ),
    'qwen3': (
        transformers.Qwen3Config, transformers.Qwen3ForCausalLM,
        dict(COMMON, tie_word_embeddings=True, head_dim=16, rope_theta=1000000.0),
        torch.bfloat16, 'Qwen3: q/k RMSNorm, head_dim 16 (not hidden/heads), tied head',
    ),
    'gemma2': (
        transformers.Gemma2Config, transformers.Gemma2ForCausalLM,
        dict(COMMON, num_attention_heads=2, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=64,
             sliding_window=4, attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
             hidden_activation='gelu_pytorch_tanh', tie_word_embeddings=True, rope_theta=10000.0),
        torch.bfloat16,
        'Gemma 2: (1 + w) RMSNorm, sqrt(hidden) embedding scale, GeGLU (tanh GELU), pre and post norms, '
        'attention soft-cap 2 and final soft-cap 3, query_pre_attn_scalar 64, head_dim 256, '
        'sliding window 4 on layer 0, global layer 1',
    ),
    'gemma3': (
        transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM,
        dict(COMMON, num_hidden_layers=3, head_dim=16, query_pre_attn_scalar=24, sliding_window=4,
             sliding_window_pattern=2, rope_theta=1000000.0, rope_local_base_freq=10000.0,
             rope_scaling=dict(rope_type='linear', factor=4.0), hidden_activation='gelu_pytorch_tanh',
             tie_word_embeddings=True),
        torch.float32,
        'Gemma 3 text: q/k norm, local (window 4, base 1e4) / global (base 1e6, linear x4) layers '
        'sliding, full, sliding',
    ),
    'phi3': (
        transformers.Phi3Config, transformers.Phi3ForCausalLM,
        dict(COMMON, tie_word_embeddings=False, rope_theta=10000.0, original_max_position_embeddings=8,
             sliding_window=6,
             rope_scaling=dict(type='longrope', short_factor=[1.0, 1.3, 1.9, 2.6],
                               long_factor=[1.1, 2.5, 6.0, 11.0])),
        torch.float32,
        'Phi-3: fused qkv_proj and gate_up_proj, LongRoPE (original context 8, rows of 16), '
        'sliding window 6, untied head',
    ),
    'phi4-mini': (
        transformers.Phi3Config, transformers.Phi3ForCausalLM,
        dict(COMMON, hidden_size=64, num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True,
             rope_theta=10000.0, original_max_position_embeddings=8, partial_rotary_factor=0.75,
             rope_scaling=dict(type='longrope', short_factor=[1.0, 1.1, 1.4, 1.8, 2.4, 3.0],
                               long_factor=[1.0, 1.5, 3.0, 6.0, 9.0, 14.0])),
        torch.bfloat16,
        'Phi-4-mini: fused projections, LongRoPE, partial_rotary_factor 0.75 (12 of 16 dims rotated), tied head',
    ),
    'smollm3': (
        transformers.SmolLM3Config, transformers.SmolLM3ForCausalLM,
        dict(COMMON, num_hidden_layers=4, no_rope_layers=[1, 0, 1, 0], tie_word_embeddings=True,
             rope_theta=10000.0),
        torch.float32, 'SmolLM3: no rotary embedding on layers 1 and 3 (no_rope_layers [1, 0, 1, 0])',
    ),
}

# Weight scale: large enough that 64 greedy tokens wander instead of repeating one token, small
# enough that float32 (Transformers' own float32 run included, see float32_worst) stays within the
# tests' bounds. The wider Phi-4-mini model gets a smaller one.
MATRIX_STD = {'phi4-mini': 0.2}
# Gemma scales its embeddings by sqrt(hidden) and ties its head to them: at the matrices' scale the
# residual stream is mostly the input token's own embedding and greedy decoding repeats one token.
# Smaller embedding rows let the layers decide, so that 64 greedy tokens vary.
EMBEDDING_STD = {'gemma2': 0.02, 'gemma3': 0.02}

# The families that get a DoRA adapter made by PEFT too (peft/<name>/dora/).
DORA_MODELS = ('gemma2', 'gemma3', 'phi3', 'phi4-mini', 'smollm3')

INPUT_IDS = [
    [1, 17, 42, 5, 63, 8, 8, 30, 11, 2, 50, 7, 33, 21, 4, 59],
    [1, 3, 9, 27, 17, 19, 57, 44, 0, 12, 36, 25, 61, 6, 48, 13],
]
PROMPT = [1, 17, 42, 5]
NEW_TOKENS = 64


def f32(values):
    """Float32-rounded numbers, written with the 9 significant digits that round-trip a float32."""
    return [float('%.9g' % v) for v in torch.as_tensor(values).to(torch.float32).flatten().tolist()]


def g9(values):
    """float64 values to 9 significant digits (far below the tests' 1e-5 relative tolerance)."""
    return [float('%.9g' % v) for v in torch.as_tensor(values).to(torch.float64).flatten().tolist()]


def f64(values):
    return [float(repr(v)) for v in torch.as_tensor(values).to(torch.float64).flatten().tolist()]


def randomize(model, gemma, std, embedding_std):
    """Seeded random weights: N(0, std) matrices (embeddings N(0, embedding_std)); norms 1 + N(0, 0.1)
    ((1 + w) norms: N(0, 0.1))."""
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            if 'norm' in name:
                value = noise * 0.1 + (0.0 if gemma else 1.0)
            elif name.endswith('bias'):
                value = noise * 0.05
            elif 'embed_tokens' in name:
                value = noise * embedding_std
            else:
                value = noise * std
            parameter.copy_(value.to(parameter.dtype))


def save_model(model, dtype, folders):
    """config.json and model.safetensors (one tensor per name, tied head left out) into each folder."""
    with tempfile.TemporaryDirectory() as scratch:
        model.config.save_pretrained(scratch)
        with open(os.path.join(scratch, 'config.json')) as handle:
            config = json.load(handle)
    config.pop('transformers_version', None)
    config['torch_dtype'] = str(dtype).replace('torch.', '')
    config.pop('dtype', None)
    tensors = {}
    for name, tensor in model.state_dict().items():
        if name == 'lm_head.weight' and model.config.tie_word_embeddings:
            continue
        tensors[name] = tensor.detach().to(dtype).contiguous()
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, 'config.json'), 'w') as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
            handle.write('\n')
        save_file(dict(sorted(tensors.items())), os.path.join(folder, 'model.safetensors'), metadata={'format': 'pt'})


def per_token_loss(logits, ids):
    log_probs = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    return -log_probs.gather(-1, ids[:, 1:, None])[..., 0]


def greedy(model):
    ids = torch.tensor([PROMPT])
    out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0,
                         output_logits=True, return_dict_in_generate=True, min_new_tokens=NEW_TOKENS)
    tokens = out.sequences[0, len(PROMPT):].tolist()
    margin = math.inf
    for step in out.logits:
        top = torch.topk(step[0].double(), 2).values
        margin = min(margin, float(top[0] - top[1]))
    return tokens, margin


def greedy_full_passes(model):
    """Greedy decoding by a full forward pass over the whole sequence at every step (no cache)."""
    ids = torch.tensor([PROMPT])
    margin = math.inf
    for _ in range(NEW_TOKENS):
        logits = model(input_ids=ids, use_cache=False).logits[0, -1]
        top = torch.topk(logits.double(), 2).values
        margin = min(margin, float(top[0] - top[1]))
        ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    return ids[0, len(PROMPT):].tolist(), margin


def lora_step(name, model, ids, out_folder):
    """One LoRA forward/backward with PEFT in float64; saves the adapter as PEFT writes it."""
    torch.manual_seed(99)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules='all-linear', lora_dropout=0.0,
                             init_lora_weights=False, task_type='CAUSAL_LM')
    adapted = peft.get_peft_model(model, config)
    # Round the adapter to float32 (what is saved) and compute in float64 from those values.
    with torch.no_grad():
        for parameter_name, parameter in adapted.named_parameters():
            if 'lora_' in parameter_name:
                parameter.copy_(parameter.to(torch.float32).to(parameter.dtype))
    with tempfile.TemporaryDirectory() as scratch:
        adapted.save_pretrained(scratch)
        with open(os.path.join(scratch, 'adapter_config.json')) as handle:
            adapter_config = json.load(handle)
        adapter_config['base_model_name_or_path'] = None
        adapter_config.pop('revision', None)
        # PEFT keeps target_modules in a set: sort it so the file is the same from run to run.
        if isinstance(adapter_config.get('target_modules'), list):
            adapter_config['target_modules'] = sorted(adapter_config['target_modules'])
        with open(os.path.join(out_folder, 'adapter_config.json'), 'w') as handle:
            json.dump(adapter_config, handle, indent=2, sort_keys=True)
            handle.write('\n')
    lora = {k: v.detach().to(torch.float32).contiguous() for k, v in adapted.named_parameters() if 'lora_' in k}
    # PEFT's file naming: base_model.model.<module>.lora_A.weight (the adapter name dropped).
    weights = {k.replace('.default', ''): v for k, v in lora.items()}
    save_file(dict(sorted(weights.items())), os.path.join(out_folder, 'adapter_model.safetensors'),
              metadata={'format': 'pt'})
    adapted.train()
    # The same step in float32: how far Transformers itself lands from its float64 gradients.
    adapted(input_ids=ids, labels=ids).loss.backward()
    float32_gradients = {k: p.grad.detach().double().clone() for k, p in adapted.named_parameters() if 'lora_' in k}
    adapted.zero_grad()
    adapted.double()
    output = adapted(input_ids=ids, labels=ids)
    output.loss.backward()
    adapted_logits = output.logits.detach()
    gradients = {}
    for parameter_name, parameter in sorted(adapted.named_parameters()):
        if 'lora_' in parameter_name:
            key = parameter_name.replace('.default', '').replace('base_model.model.', '')
            gradients[key] = dict(shape=list(parameter.shape), values=g9(parameter.grad))
    largest = max(max(abs(v) for v in g['values']) for g in gradients.values())
    float32_worst = max(float((float32_gradients[k] - p.grad).abs().max())
                        for k, p in adapted.named_parameters() if 'lora_' in k)
    golden = dict(
        description=f'{name}: one LoRA step made with peft {peft.__version__} (r 4, alpha 8, all-linear, '
                    'lora_A and lora_B random): gradients of the mean next-token loss, float64',
        input_ids=INPUT_IDS,
        loss=float(output.loss),
        adapted_logits=f32(adapted_logits),
        target_modules=sorted(adapted.peft_config['default'].target_modules),
        largest_gradient=largest,
        float32_worst=float('%.3g' % float32_worst),
        gradients=gradients,
    )
    with open(os.path.join(out_folder, 'lora-golden.json'), 'w') as handle:
        json.dump(golden, handle, sort_keys=True, separators=(',', ':'))
        handle.write('\n')


def dora_adapter(name, model, ids, out_folder):
    """A DoRA adapter made by PEFT (r 4, all-linear, lora_B random, magnitudes moved off their
    initial norms so that they matter) and the adapted model's logits in float64."""
    torch.manual_seed(7)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules='all-linear', lora_dropout=0.0, use_dora=True,
                             init_lora_weights=False, task_type='CAUSAL_LM')
    adapted = peft.get_peft_model(model, config)
    generator = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for parameter_name, parameter in sorted(adapted.named_parameters()):
            if 'lora_magnitude_vector' in parameter_name:
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                parameter.mul_((1 + 0.2 * noise).to(parameter.dtype))
            if 'lora_' in parameter_name:
                parameter.copy_(parameter.to(torch.float32).to(parameter.dtype))
    folder = os.path.join(out_folder, 'dora')
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        adapted.save_pretrained(scratch)
        with open(os.path.join(scratch, 'adapter_config.json')) as handle:
            adapter_config = json.load(handle)
        adapter_config['base_model_name_or_path'] = None
        adapter_config.pop('revision', None)
        if isinstance(adapter_config.get('target_modules'), list):
            adapter_config['target_modules'] = sorted(adapter_config['target_modules'])
        with open(os.path.join(folder, 'adapter_config.json'), 'w') as handle:
            json.dump(adapter_config, handle, indent=2, sort_keys=True)
            handle.write('\n')
        from safetensors.torch import load_file
        weights = load_file(os.path.join(scratch, 'adapter_model.safetensors'))
    save_file(dict(sorted((k, v.contiguous()) for k, v in weights.items())),
              os.path.join(folder, 'adapter_model.safetensors'), metadata={'format': 'pt'})
    adapted.double()
    with torch.no_grad():
        logits = adapted(input_ids=ids).logits
    golden = dict(
        description=f'{name}: a DoRA adapter made with peft {peft.__version__} (r 4, alpha 8, all-linear, '
                    'lora_B random, magnitudes scaled by 1 + N(0, 0.2)): the adapted logits, float64',
        input_ids=INPUT_IDS,
        adapted_logits=f32(logits),
    )
    with open(os.path.join(folder, 'dora-golden.json'), 'w') as handle:
        json.dump(golden, handle, sort_keys=True, separators=(',', ':'))
        handle.write('\n')


def build(name):
    config_class, model_class, fields, dtype, description = MODELS[name]
    torch.manual_seed(0)
    config = config_class(**fields)
    config._attn_implementation = 'eager'
    model = model_class(config).eval()
    std = MATRIX_STD.get(name, 0.3)
    randomize(model, gemma=name.startswith('gemma'), std=std, embedding_std=EMBEDDING_STD.get(name, std))
    # What is saved is what is tested: round the weights through the file's dtype.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.to(dtype).to(torch.float32))
    nn_folder = os.path.join(NN_OUT, name)
    peft_folder = os.path.join(PEFT_OUT, name)
    for folder in (nn_folder, peft_folder):
        shutil.rmtree(folder, ignore_errors=True)
    save_model(model, dtype, [nn_folder, peft_folder])

    model.double()
    ids = torch.tensor(INPUT_IDS)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        losses = per_token_loss(logits, ids)
        tokens, margin = greedy(model)
        # LongRoPE rotates a whole pass with the long factors once it outgrows the short context:
        # a pass over only the first original_max_position_embeddings tokens uses the short ones.
        short = getattr(config, 'original_max_position_embeddings', None) if name.startswith('phi') else None
        short_logits = model(input_ids=ids[:, :short]).logits if short else None
        # Phi3ForCausalLM.generate in transformers 5.18 drops its cache when the sequence first
        # outgrows the short context (to rotate every key with the long factors again), but then
        # feeds only the newest token, so from there on each step sees no context. webtune runs
        # the whole sequence again at the switch; its reference is greedy over full passes, and
        # generate()'s tokens are kept to show where the two part.
        full_pass_tokens, full_pass_margin = greedy_full_passes(model) if short else (None, None)
    golden = dict(
        description=f'{description}. Made with transformers {transformers.__version__} and torch '
                    f'{torch.__version__.split("+")[0]} in float64 by tools/golden/transformers_families.py',
        weights='model.safetensors',
        input_ids=INPUT_IDS,
        shape=list(logits.shape),
        logits=f32(logits),
        token_losses=f64(losses),
        mean_loss=float(losses.mean()),
        greedy=dict(prompt=PROMPT, tokens=tokens, smallest_top2_gap=margin),
    )
    if short_logits is not None:
        golden['short_context'] = dict(length=short, logits=f32(short_logits))
        golden['greedy'] = dict(prompt=PROMPT, tokens=full_pass_tokens, generate_tokens=tokens,
                                smallest_top2_gap=full_pass_margin,
                                reference='greedy over full forward passes (see the script)')
    with open(os.path.join(nn_folder, 'golden.json'), 'w') as handle:
        json.dump(golden, handle, sort_keys=True, separators=(',', ':'))
        handle.write('\n')

    # A fresh float32 copy for PEFT (get_peft_model wraps the model in place).
    base = model_class(config).eval()
    base.load_state_dict({k: v.to(torch.float32) for k, v in model.state_dict().items()})
    lora_step(name, base, ids, peft_folder)
    if name in DORA_MODELS:
        base = model_class(config).eval()
        base.load_state_dict({k: v.to(torch.float32) for k, v in model.state_dict().items()})
        dora_adapter(name, base, ids, peft_folder)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    started = time.time()
    for name in MODELS:
        build(name)
        print(f'{name}: done')
    print(f'{len(MODELS)} models in {time.time() - started:.1f} s')


if __name__ == '__main__':
    main()
