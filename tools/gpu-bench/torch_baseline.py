"""The baseline of tools/gpu-bench: the same cases in Transformers + PEFT, in one process.

Reads the case list run.mjs writes on stdin and prints one JSON object: the device, the dtype,
the library versions and, per case name, the value in the case's unit. CUDA in bf16 when torch
sees a GPU, else the CPU in f32 with every core torch uses by default. The 4-bit cases run the
bf16 base (what Transformers + PEFT users run without bitsandbytes); bitsandbytes' NF4 is used
instead when it imports and CUDA is present, and the note says which.
"""
import json
import statistics
import sys
import time

import torch
import transformers
import peft
from peft import LoraConfig, get_peft_model
from transformers import Qwen3Config, Qwen3ForCausalLM

spec = json.load(sys.stdin)
cuda = torch.cuda.is_available()
device = torch.device('cuda' if cuda else 'cpu')
dtype = torch.bfloat16 if cuda else torch.float32
results = {}
notes = {}
wanted = set(spec['cases'])


def sync():
    if cuda:
        torch.cuda.synchronize()


def timed(fn, repeats=3):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def hf_config(c):
    return Qwen3Config(
        hidden_size=c['hiddenSize'],
        intermediate_size=c['intermediateSize'],
        num_hidden_layers=c['numHiddenLayers'],
        num_attention_heads=c['numAttentionHeads'],
        num_key_value_heads=c['numKeyValueHeads'],
        head_dim=c['headDim'],
        vocab_size=c['vocabSize'],
        tie_word_embeddings=c['tieWordEmbeddings'],
        max_position_embeddings=c['maxPositionEmbeddings'],
        attn_implementation='eager',
    )


def make_model(c):
    torch.manual_seed(0)
    return Qwen3ForCausalLM(hf_config(c)).to(device=device, dtype=dtype)


n = spec['matmul']
for kind in ('f32', 'f16'):
    name = f'matmul {kind} {n}^3'
    if name not in wanted:
        continue
    # f16 is compared with bf16 on CUDA (PyTorch's fast half path); the CPU has no fast half matmul.
    mm_dtype = torch.float32 if kind == 'f32' or not cuda else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=mm_dtype)
    b = torch.randn(n, n, device=device, dtype=mm_dtype)
    seconds = timed(lambda: a @ b)
    results[name] = 2 * n ** 3 / seconds / 1e9
    notes[name] = f'torch {str(mm_dtype).replace("torch.", "")} on {device.type}'

attn = spec.get('attention')
if attn and f"attention fwd+bwd {attn['seq']} tokens" in wanted:
    name = f"attention fwd+bwd {attn['seq']} tokens"
    # PyTorch's fused scaled_dot_product_attention (flash / memory-efficient kernels on CUDA).
    shape_q = (1, attn['heads'], attn['seq'], attn['head_dim'])
    shape_kv = (1, attn['kv_heads'], attn['seq'], attn['head_dim'])
    q = torch.randn(shape_q, device=device, dtype=dtype, requires_grad=True)
    k = torch.randn(shape_kv, device=device, dtype=dtype, requires_grad=True)
    v = torch.randn(shape_kv, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(shape_q, device=device, dtype=dtype)

    def attention_step():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        out.backward(g)

    results[name] = attn['seq'] / timed(attention_step)
    notes[name] = f'scaled_dot_product_attention {str(dtype).replace("torch.", "")} on {device.type}'

has_bnb = False
if cuda:
    try:
        import bitsandbytes  # noqa: F401
        has_bnb = True
    except ImportError:
        pass

for shape in spec['sft']:
    for base in ('f16', '4-bit'):
        name = f"lora-sft {shape['name']} {base} base"
        if name not in wanted:
            continue
        if base == '4-bit' and has_bnb:
            from transformers import BitsAndBytesConfig
            torch.manual_seed(0)
            model = Qwen3ForCausalLM(hf_config(shape['config']))
            model.save_pretrained('/tmp/webtune-gpu-bench-base')
            model = Qwen3ForCausalLM.from_pretrained(
                '/tmp/webtune-gpu-bench-base',
                quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16),
            )
            notes[name] = 'bitsandbytes NF4 base, bf16 compute'
        else:
            model = make_model(shape['config'])
            notes[name] = f'{str(dtype).replace("torch.", "")} base on {device.type}' + (
                ' (no 4-bit base without bitsandbytes)' if base == '4-bit' else '')
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules='all-linear'))
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        ids = torch.randint(0, shape['config']['vocabSize'], (spec['batch'], spec['seq']), device=device)

        def step():
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        seconds = timed(step, repeats=spec['steps'])
        results[name] = spec['batch'] * spec['seq'] / seconds
        del model, optimizer
        if cuda:
            torch.cuda.empty_cache()

gen = spec['generation']
prefill_name = f"prefill {gen['name']}"
decode_name = f"decode {gen['name']}"
if prefill_name in wanted or decode_name in wanted:
    # The dtype of webtune's generation case is f32; the baseline uses its own fast dtype.
    model = make_model(gen['config']).eval()
    prompt = torch.randint(1, gen['config']['vocabSize'], (1, spec['prompt']), device=device)

    @torch.no_grad()
    def prefill():
        return model(input_ids=prompt, use_cache=True)

    @torch.no_grad()
    def decode():
        out = model(input_ids=prompt, use_cache=True)
        cache = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        sync()
        started = time.perf_counter()
        for _ in range(spec['new_tokens'] - 1):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        sync()
        return time.perf_counter() - started

    results[prefill_name] = spec['prompt'] / timed(prefill)
    decode()
    results[decode_name] = (spec['new_tokens'] - 1) / statistics.median([decode() for _ in range(3)])
    for name in (prefill_name, decode_name):
        notes[name] = f'{str(dtype).replace("torch.", "")} eager on {device.type}, KV cache, greedy'

print(json.dumps({
    'device': torch.cuda.get_device_name(0) if cuda else f'cpu ({torch.get_num_threads()} threads)',
    'dtype': str(dtype).replace('torch.', ''),
    'versions': {'torch': torch.__version__, 'transformers': transformers.__version__, 'peft': peft.__version__},
    'results': results,
    'notes': notes,
}))
