#!/usr/bin/env python3
"""Adapters saved by webtune, loaded by Hugging Face PEFT + Transformers: do the logits match?

packages/peft/src/files/webtune-adapters.test.ts (run with WEBTUNE_WRITE_GOLDENS=1) writes
packages/peft/src/__fixtures__/webtune-adapters/<case>/{adapter_config.json,
adapter_model.safetensors, webtune-logits.json}: LoRA, rsLoRA, DoRA and modules_to_save adapters
saved by webtune's saveAdapter on the tiny base models of tools/golden/peft_adapters.py, with the
logits webtune computed (float32, on the GPU). This script builds each base model with
Transformers, loads the adapter folder with `peft.PeftModel.from_pretrained` as a user would, runs
it in float64 and writes the largest |PEFT logits - webtune logits| per case to
packages/peft/src/__fixtures__/webtune-adapters/peft-check.json, which the same test reads.

Run (about 3 s of CPU time; byte-identical from run to run):
    .venv/bin/python tools/golden/webtune_adapters_in_peft.py
"""
import importlib.util
import json
import os
import warnings

import peft
import torch
import transformers
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
FIXTURES = os.path.join(ROOT, 'packages', 'peft', 'src', '__fixtures__')
FOLDER = os.path.join(FIXTURES, 'webtune-adapters')

# The base models and their Transformers classes come from the generator of the PEFT-made adapters.
spec = importlib.util.spec_from_file_location('peft_adapters', os.path.join(HERE, 'peft_adapters.py'))
peft_adapters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peft_adapters)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')
    cases = {}
    for case in sorted(os.listdir(FOLDER)):
        folder = os.path.join(FOLDER, case)
        if not os.path.isdir(folder):
            continue
        with open(os.path.join(folder, 'webtune-logits.json')) as handle:
            webtune = json.load(handle)
        base = webtune['base']
        weights = load_file(os.path.join(FIXTURES, 'base', base, 'model.safetensors'))
        model = peft_adapters.hf_model(base, weights)
        ids = torch.tensor(webtune['input_ids'])
        base_logits = peft_adapters.logits64(model, ids)
        adapted = peft.PeftModel.from_pretrained(model, folder).eval()
        logits = peft_adapters.logits64(adapted, ids)
        expected = torch.tensor(webtune['logits'], dtype=torch.float64).view(webtune['shape'])
        difference = float((logits - expected).abs().max())
        change = float((logits - base_logits).abs().max())
        cases[case] = dict(
            max_abs_difference=float(f'{difference:.3g}'),
            max_change_from_base=float(f'{change:.6g}'),
            tensors=len(load_file(os.path.join(folder, 'adapter_model.safetensors'))),
            peft_modules=sorted(n.replace('base_model.model.', '') for n, m in adapted.named_modules()
                                if isinstance(m, peft.tuners.lora.LoraLayer)),
        )
        print(f'{case}: max |PEFT - webtune| {difference:.2e} (the adapter moves the logits by up to {change:.3f})')
    result = dict(
        description='Adapters saved by webtune (packages/peft/src/files/webtune-adapters.test.ts), loaded by '
                    'peft.PeftModel.from_pretrained on the Transformers model and run in float64 '
                    '(tools/golden/webtune_adapters_in_peft.py)',
        peft_version=peft.__version__,
        transformers_version=transformers.__version__,
        torch_version=torch.__version__.split('+')[0],
        cases=cases,
    )
    with open(os.path.join(FOLDER, 'peft-check.json'), 'w') as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
        handle.write('\n')


if __name__ == '__main__':
    main()
