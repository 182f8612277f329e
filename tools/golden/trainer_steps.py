#!/usr/bin/env python3
"""Optimizer and training-step goldens from torch, Transformers and PEFT themselves, for @webtune/train.

1. packages/train/src/__fixtures__/adamw-steps.json: five steps of `torch.optim.AdamW` (float64)
   on three parameters, as Transformers' Trainer sets it up and drives it: two parameter groups
   (weight decay 0.1 for the matrix, none for the bias and the norm weight, the split of
   Trainer.get_decay_parameter_names), `torch.nn.utils.clip_grad_norm_` to max_grad_norm 1 before
   each step (its return value, the norm before clipping, is what Trainer logs as grad_norm) and
   the learning rate of `get_linear_schedule_with_warmup` (1 warmup step of 5). Gradients are
   drawn in float32; two steps have a norm above 1, so clipping acts.

2. packages/train/src/__fixtures__/lora-sft-steps/: three LoRA SFT steps end to end. A tiny random
   Llama (Transformers 5.18) gets a LoRA adapter from `peft.get_peft_model` (r 4, alpha 8,
   all-linear, PEFT's own initialisation: lora_A Kaiming-uniform, lora_B zero), saved as PEFT
   writes it. Then, in float64 from those float32 values, the loop Trainer runs for
   per_device_train_batch_size 2 (the whole batch), gradient_accumulation_steps 1: forward with
   labels (the mean next-token loss over labelled tokens), backward, clip_grad_norm_(0.5),
   torch.optim.AdamW (lr 5e-3, weight_decay 0.01, betas 0.9/0.999, eps 1e-8) step, linear schedule
   step, zero_grad. golden.json records per step the loss, the grad norm before clipping, the
   learning rate and every LoRA tensor after the update.

Run (about 3 s of CPU; byte-identical from run to run):
    .venv/bin/python tools/golden/trainer_steps.py
"""
import json
import os
os.environ.setdefault('HF_HUB_DISABLE_PROGRESS_BARS', '1')
import shutil
import tempfile

import peft
import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'packages', 'train', 'src', '__fixtures__')
IGNORE = -100


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def adamw_steps():
    g = torch.Generator().manual_seed(11)
    shapes = {'layer.weight': (3, 4), 'layer.bias': (3,), 'norm.weight': (4,)}
    initial = {n: torch.randn(s, generator=g, dtype=torch.float32).double() for n, s in shapes.items()}
    parameters = {n: torch.nn.Parameter(t.clone()) for n, t in initial.items()}
    decayed = ['layer.weight']
    optimizer = torch.optim.AdamW([
        {'params': [parameters[n] for n in decayed], 'weight_decay': 0.1},
        {'params': [p for n, p in parameters.items() if n not in decayed], 'weight_decay': 0.0},
    ], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, num_warmup_steps=1, num_training_steps=5)
    steps = []
    scales = [0.2, 1.5, 0.3, 2.0, 0.1]
    for scale in scales:
        gradients = {n: (scale * torch.randn(shapes[n], generator=g, dtype=torch.float32)).double() for n in shapes}
        for n, p in parameters.items():
            p.grad = gradients[n].clone()
        learning_rate = optimizer.param_groups[0]['lr']
        norm = torch.nn.utils.clip_grad_norm_(list(parameters.values()), max_norm=1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        steps.append(dict(learning_rate=learning_rate, gradients={n: flat(t) for n, t in gradients.items()},
                          grad_norm=float(norm), parameters={n: flat(p) for n, p in parameters.items()}))
    assert sum(s['grad_norm'] > 1 for s in steps) >= 2
    return dict(
        description=f'torch {torch.__version__.split("+")[0]} optim.AdamW (float64) driven as transformers '
                    f'{transformers.__version__} Trainer drives it: decay groups, clip_grad_norm_(1.0), '
                    'linear schedule with 1 warmup step (tools/golden/trainer_steps.py)',
        settings=dict(lr=0.05, weight_decay=0.1, beta1=0.9, beta2=0.999, eps=1e-8, max_grad_norm=1.0,
                      warmup_steps=1, total_steps=5, decayed=decayed),
        shapes={n: list(s) for n, s in shapes.items()},
        initial={n: flat(t) for n, t in initial.items()},
        steps=steps,
    )


CONFIG = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=64, max_position_embeddings=64, rms_norm_eps=1e-6,
              rope_theta=10000.0, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
# Two rows: a 3-token prompt (not trained) and an answer; the second row is shorter (padding).
ROWS = [
    dict(input_ids=[1, 17, 33, 5, 9, 41, 12, 60, 7, 22, 38, 2], prompt=3),
    dict(input_ids=[1, 44, 6, 28, 13, 50, 19, 2], prompt=3),
]
SETTINGS = dict(learning_rate=5e-3, weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                max_grad_norm=0.5, lr_scheduler_type='linear', warmup_steps=0, max_steps=3,
                per_device_train_batch_size=2, gradient_accumulation_steps=1)


def lora_sft_steps():
    folder = os.path.join(OUT, 'lora-sft-steps')
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    torch.manual_seed(5)
    config = transformers.LlamaConfig(**CONFIG)
    config._attn_implementation = 'eager'
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if 'norm' in name:
                parameter.copy_(1 + 0.2 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.3 * torch.randn_like(parameter))
    model.save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, 'config.json')) as handle:
        saved_config = json.load(handle)
    with open(os.path.join(folder, 'config.json'), 'w') as handle:
        json.dump(saved_config, handle, indent=2, sort_keys=True)
        handle.write('\n')
    # save_pretrained may record a generation config; the test needs only these two files.
    for name in os.listdir(folder):
        if name not in ('config.json', 'model.safetensors'):
            os.remove(os.path.join(folder, name))
    adapted = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                         target_modules='all-linear', task_type='CAUSAL_LM'))
    with tempfile.TemporaryDirectory() as scratch:
        adapted.save_pretrained(scratch)
        shutil.copyfile(os.path.join(scratch, 'adapter_model.safetensors'),
                        os.path.join(folder, 'adapter_model.safetensors'))
        with open(os.path.join(scratch, 'adapter_config.json')) as handle:
            adapter_config = json.load(handle)
    adapter_config['base_model_name_or_path'] = None
    adapter_config['target_modules'] = sorted(adapter_config['target_modules'])
    with open(os.path.join(folder, 'adapter_config.json'), 'w') as handle:
        json.dump(adapter_config, handle, indent=2, sort_keys=True)
        handle.write('\n')

    adapted.double().train()
    seq = max(len(r['input_ids']) for r in ROWS)
    input_ids = torch.zeros(len(ROWS), seq, dtype=torch.long)
    attention = torch.zeros(len(ROWS), seq, dtype=torch.long)
    labels = torch.full((len(ROWS), seq), IGNORE, dtype=torch.long)
    for i, row in enumerate(ROWS):
        n = len(row['input_ids'])
        input_ids[i, :n] = torch.tensor(row['input_ids'])
        attention[i, :n] = 1
        labels[i, row['prompt']:n] = torch.tensor(row['input_ids'][row['prompt']:])
    trainable = [(n, p) for n, p in adapted.named_parameters() if p.requires_grad]
    decayed = [p for n, p in trainable if 'bias' not in n and 'norm' not in n]
    optimizer = torch.optim.AdamW(
        [{'params': decayed, 'weight_decay': SETTINGS['weight_decay']}],
        lr=SETTINGS['learning_rate'], betas=(SETTINGS['adam_beta1'], SETTINGS['adam_beta2']),
        eps=SETTINGS['adam_epsilon'])
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, 0, SETTINGS['max_steps'])
    steps = []
    for _ in range(SETTINGS['max_steps']):
        learning_rate = optimizer.param_groups[0]['lr']
        loss = adapted(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in trainable], SETTINGS['max_grad_norm'])
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        steps.append(dict(
            loss=loss.item(), grad_norm=norm.item(), learning_rate=learning_rate,
            lora={n.replace('.default', ''): [float(f'{v:.9g}') for v in flat(p)] for n, p in sorted(trainable)}))
    golden = dict(
        description=f'Three LoRA SFT steps with transformers {transformers.__version__}, peft {peft.__version__} '
                    f'and torch {torch.__version__.split("+")[0]} optim.AdamW in float64 '
                    '(tools/golden/trainer_steps.py)',
        settings=SETTINGS,
        rows=[dict(input_ids=r['input_ids'], labels=[IGNORE] * r['prompt'] + r['input_ids'][r['prompt']:])
              for r in ROWS],
        steps=steps,
    )
    with open(os.path.join(folder, 'golden.json'), 'w') as handle:
        json.dump(golden, handle, sort_keys=True)
        handle.write('\n')
    for i, s in enumerate(steps):
        print(f'LoRA SFT step {i + 1}: loss {s["loss"]:.6f} grad norm {s["grad_norm"]:.4f} lr {s["learning_rate"]:.2e}')


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'adamw-steps.json'), 'w') as handle:
        json.dump(adamw_steps(), handle, indent=1, sort_keys=True)
        handle.write('\n')
    lora_sft_steps()


if __name__ == '__main__':
    main()
