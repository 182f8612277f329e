#!/usr/bin/env python3
"""Golden values for @webtune/objectives' ktoLoss from TRL 1.13 itself.

Run with the venv that has trl 1.13 and torch (see tools/golden/requirements.txt):

    /work/venv/bin/python tools/golden/trl_kto.py

It calls TRL's own `KTOTrainer._compute_loss` (loss_type "kto", precomputed reference
log-probabilities, the KL term estimated from mismatched pairs) on fixed logits, through a
stand-in model that returns them, and records the loss, the gradient of the logits and the
metrics TRL logs. It writes packages/objectives/src/__fixtures__/kto-goldens.json, which
packages/objectives/src/kto-loss.test.ts reads (the test suite needs no Python).
"""

import json
import os
from collections import defaultdict
from types import SimpleNamespace

import torch
import trl
from trl.trainer.kto_trainer import KTOTrainer

assert trl.__version__.startswith('1.13'), trl.__version__
torch.manual_seed(2024)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'packages', 'objectives', 'src', '__fixtures__', 'kto-goldens.json')

ROWS, SEQ, VOCAB = 4, 6, 7
# Completion masks: the prompt is the first 2 (or 3) tokens; the last row has padding at the end.
COMPLETION = torch.tensor([
    [0, 0, 1, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 1, 1, 1, 0],
    [0, 0, 1, 1, 1, 1],
])
KL_COMPLETION = torch.tensor([
    [0, 0, 0, 1, 1, 1],
    [0, 0, 1, 1, 1, 0],
    [0, 0, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1],
])


class FixedLogits(torch.nn.Module):
    """A stand-in model: returns the logits given for the exact input_ids tensor it is called with."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.training = True

    def forward(self, input_ids, attention_mask=None, **_):
        for ids, logits in self.table:
            if ids is input_ids:
                return SimpleNamespace(logits=logits)
        raise KeyError('unknown input_ids')


def case(name, labels, beta, desirable_weight, undesirable_weight, ref_shift):
    input_ids = torch.randint(0, VOCAB, (ROWS, SEQ))
    kl_ids = torch.randint(0, VOCAB, (ROWS, SEQ))
    logits = torch.randn(ROWS, SEQ, VOCAB, dtype=torch.float32).to(torch.float64).requires_grad_(True)
    kl_logits = torch.randn(ROWS, SEQ, VOCAB, dtype=torch.float32).to(torch.float64)
    ref_logps = (torch.randn(ROWS, dtype=torch.float32).to(torch.float64) - 6.0)
    ref_kl_logps = (torch.randn(ROWS, dtype=torch.float32).to(torch.float64) - 6.0 + ref_shift)
    batch = {
        'input_ids': input_ids,
        'attention_mask': torch.ones(ROWS, SEQ, dtype=torch.long),
        'completion_mask': COMPLETION,
        'KL_input_ids': kl_ids,
        'KL_attention_mask': torch.ones(ROWS, SEQ, dtype=torch.long),
        'KL_completion_mask': KL_COMPLETION,
        'label': torch.tensor(labels, dtype=torch.bool),
        'ref_logps': ref_logps,
        'ref_KL_logps': ref_kl_logps,
    }
    model = FixedLogits([(input_ids, logits), (kl_ids, kl_logits)])
    fake = SimpleNamespace(
        model=model,
        accelerator=SimpleNamespace(device=torch.device('cpu'), gather_for_metrics=lambda t: t),
        calculate_KL=True,
        use_liger_kernel=False,
        aux_loss_enabled=False,
        precompute_ref_logps=True,
        loss_type='kto',
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        _metrics={'train': defaultdict(list), 'eval': defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    fake._compute_kl_logps = lambda m, b: KTOTrainer._compute_kl_logps(fake, m, b)
    loss = KTOTrainer._compute_loss(fake, model, batch, False)
    loss.backward()
    metrics = {k: v[-1] for k, v in fake._metrics['train'].items() if k in (
        'kl', 'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'logps/chosen', 'logps/rejected')}

    def flat(t):
        return [float(v) for v in t.detach().reshape(-1).tolist()]

    return {
        'name': name,
        'beta': beta,
        'desirable_weight': desirable_weight,
        'undesirable_weight': undesirable_weight,
        'labels': [bool(v) for v in labels],
        'input_ids': flat(input_ids),
        'completion_mask': flat(COMPLETION),
        'kl_input_ids': flat(kl_ids),
        'kl_completion_mask': flat(KL_COMPLETION),
        'logits': flat(logits),
        'kl_logits': flat(kl_logits),
        'ref_logps': flat(ref_logps),
        'ref_kl_logps': flat(ref_kl_logps),
        'loss': float(loss),
        'grad_logits': flat(logits.grad),
        'metrics': metrics,
    }


cases = [
    case('mixed', [True, False, True, False], 0.1, 1.0, 1.0, -3.0),
    case('weighted', [True, True, False, False], 0.5, 1.33, 0.7, -3.0),
    # Reference far above the policy on the KL pairs: the estimate clamps at 0.
    case('kl-clamped', [False, True, True, True], 0.2, 1.0, 1.0, 8.0),
]
with open(OUT, 'w') as f:
    json.dump({'trl': trl.__version__, 'rows': ROWS, 'seq': SEQ, 'vocab': VOCAB, 'cases': cases}, f, indent=1)
    f.write('\n')
print('wrote', OUT)
