#!/usr/bin/python3
"""Golden mean losses for @webtune/nn's perplexity convention on stories260K.

The token sequence is BOS + the model's 200 greedy tokens (from the shared fixture
golden_greedy_ids_and_logits.json) with every 7th token replaced, so the loss is not trivially
small. For each (window, stride) the loss is computed here, independently of the TypeScript code:
every token after the first is scored once, by the window that first reaches it; a window starts
`stride` tokens after the previous one and scores only the tokens no earlier window scored.

Writes packages/nn/src/__fixtures__/stories260k-perplexity.json.
Run with Debian's PyTorch:  /usr/bin/python3 tools/golden/nn_perplexity.py
"""
import json
import math
import os
import struct
import sys

import torch

sys.dont_write_bytecode = True  # importing the sibling generator must not leave __pycache__ behind
from nn_architectures import forward  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURES = os.path.join(ROOT, '..', 'shared', 'fixtures', 'models')
OUT = os.path.join(ROOT, 'packages', 'nn', 'src', '__fixtures__', 'stories260k-perplexity.json')


def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        data = bytearray(raw[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(data, dtype=torch.float32).reshape(info['shape']).double()
    return out


def token_losses(config, weights, ids):
    """-log p(ids[t] | ids[:t]) for t = 1 .. len - 1, from one forward pass."""
    logits = forward(config, weights, torch.tensor([ids]))[0]
    logp = torch.log_softmax(logits, dim=-1)
    return [-float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]


def windowed_mean_loss(config, weights, ids, window, stride):
    total, scored, previous_end, begin, windows = 0.0, 0, 1, 0, 0
    while previous_end < len(ids):
        end = min(begin + window, len(ids))
        losses = token_losses(config, weights, ids[begin:end])
        # losses[j] scores token begin + j + 1; keep the tokens from previous_end on.
        for j, loss in enumerate(losses):
            if begin + j + 1 >= previous_end:
                total += loss
                scored += 1
        previous_end = end
        begin += stride
        windows += 1
    return total / scored, scored, windows


def main():
    config = json.load(open(os.path.join(FIXTURES, 'stories260K-hf', 'config.json')))
    weights = read_safetensors(os.path.join(FIXTURES, 'stories260K-hf', 'model.safetensors'))
    golden = json.load(open(os.path.join(FIXTURES, 'stories260K-llama2c', 'golden_greedy_ids_and_logits.json')))
    ids = [1] + list(golden['greedy_ids'])
    for i in range(3, len(ids), 7):
        ids[i] = (ids[i] * 37 + 11) % config['vocab_size']
    cases = []
    for window, stride in [(512, 256), (64, 32), (50, 49), (40, 13)]:
        mean, scored, windows = windowed_mean_loss(config, weights, ids, window, stride)
        cases.append({'window': window, 'stride': stride, 'meanLoss': mean, 'perplexity': math.exp(mean),
                      'tokens': scored, 'windows': windows})
        print(f'window {window} stride {stride}: mean loss {mean:.6f}, ppl {math.exp(mean):.4f}, '
              f'{scored} tokens, {windows} windows')
    with open(OUT, 'w') as f:
        json.dump({'description': 'stories260K perplexity golden (tools/golden/nn_perplexity.py): BOS + 200 greedy '
                                  'ids with every 7th from index 3 replaced by (id * 37 + 11) % 512; float64 PyTorch',
                   'ids': ids, 'cases': cases}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
