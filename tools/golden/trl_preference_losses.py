#!/usr/bin/env python3
"""Preference losses and metrics from trl itself, for @webtune/objectives.

The DPO family runs through trl 1.13's own code on fixed inputs (policy logits drawn in float32,
reference log-probs precomputed, a completion mask with a shared prompt and padding):

  sigmoid (DPO), hinge, ipo   DPOTrainer._compute_loss (the training loss and the metrics it logs:
                              rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,
                              logps/chosen, logps/rejected), on a trainer object made without
                              __init__ whose "model" returns the fixed logits;
  orpo                        trl.experimental.orpo ORPOTrainer.get_batch_logps (averaged),
                              odds_ratio_loss and its loss = nll - mean(beta * log sigmoid(log odds));
  simpo                       trl.experimental.cpo CPOTrainer.cpo_loss with loss_type "simpo" and
                              cpo_alpha 0 (pure SimPO), on get_batch_logps(average_log_prob=True).

Every chosen row has the same number of completion tokens, so ORPO's token-mean NLL equals the
per-sequence mean LLaMA-Factory (and webtune) use; rejected rows differ in length. Losses run in
float64 except where trl itself casts to float32 (odds_ratio_loss). The gradient of the loss with
respect to the policy logits comes from torch autograd through trl's code.

Output: packages/objectives/src/__fixtures__/trl-preference-goldens.json, read by
packages/objectives/src/trl-goldens.test.ts. Run (about 4 s; byte-identical from run to run):
    .venv/bin/python tools/golden/trl_preference_losses.py
"""
import collections
import os
os.environ.setdefault('TRL_EXPERIMENTAL_SILENCE', '1')
import json
import types
import warnings

import torch
import trl
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.utils import selective_log_softmax

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'packages', 'objectives', 'src', '__fixtures__', 'trl-preference-goldens.json')
PAIRS, SEQ, VOCAB, PROMPT = 3, 8, 9, 2
IGNORE = -100


class Accelerator:
    """What trl's loss code asks of accelerate on one process."""
    device = torch.device('cpu')

    def gather(self, tensor):
        return tensor

    def gather_for_metrics(self, tensor):
        return tensor


class FixedLogits(torch.nn.Module):
    """A "model" that returns the given logits, whatever it is fed."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, **_):
        return types.SimpleNamespace(logits=self.logits)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def inputs():
    g = torch.Generator().manual_seed(2026)
    input_ids = torch.randint(0, VOCAB, (2 * PAIRS, SEQ), generator=g)
    completion = torch.zeros(2 * PAIRS, SEQ, dtype=torch.long)
    completion[:, PROMPT:] = 1
    attention = torch.ones(2 * PAIRS, SEQ, dtype=torch.long)
    for row, length in ((PAIRS, 3), (PAIRS + 2, 5)):  # two rejected rows end in padding
        completion[row, PROMPT + length:] = 0
        attention[row, PROMPT + length:] = 0
    policy = (1.5 * torch.randn(2 * PAIRS, SEQ, VOCAB, generator=g, dtype=torch.float32)).double()
    reference = policy + (0.7 * torch.randn(2 * PAIRS, SEQ, VOCAB, generator=g, dtype=torch.float32)).double()
    # webtune's next-token targets: target[t] = input_ids[t + 1] where that token is a completion token.
    targets = torch.full_like(input_ids, IGNORE)
    targets[:, :-1] = torch.where(completion[:, 1:] == 1, input_ids[:, 1:], IGNORE)
    return input_ids, completion, attention, policy, reference, targets


def reference_logps(reference, input_ids, completion):
    per_token = selective_log_softmax(reference[:, :-1], input_ids[:, 1:])
    per_token[completion[:, 1:] == 0] = 0.0
    return per_token.sum(1)


def dpo_case(kind, beta, data):
    input_ids, completion, attention, policy, reference, _ = data
    trainer = object.__new__(DPOTrainer)
    logits = policy.clone().requires_grad_()
    model = FixedLogits(logits).train()
    ref = reference_logps(reference, input_ids, completion)
    trainer.__dict__.update(
        model=model, accelerator=Accelerator(), beta=beta, loss_types=[kind], loss_weights=[1.0],
        f_divergence_type='reverse_kl', ld_alpha=None, precompute_ref_logps=True, aux_loss_enabled=False,
        use_weighting=False, _metrics={'train': collections.defaultdict(list)}, _total_train_tokens=0,
        _tp_size=1, label_smoothing=0.0)
    batch = dict(input_ids=input_ids, attention_mask=attention, completion_mask=completion,
                 ref_chosen_logps=ref[:PAIRS], ref_rejected_logps=ref[PAIRS:])
    loss = trainer._compute_loss(model, batch, return_outputs=False)
    loss.backward()
    metrics = {k: v[-1] for k, v in trainer._metrics['train'].items()
               if k.startswith('rewards/') or k.startswith('logps/')}
    return dict(loss=kind, beta=beta, source=f'trl {trl.__version__} DPOTrainer._compute_loss',
                loss_value=float(loss), metrics=metrics, grad_logits=flat(logits.grad))


def labels_of(input_ids, completion):
    return torch.where(completion == 1, input_ids, IGNORE)


def orpo_case(beta, data):
    input_ids, completion, _, policy, _, _ = data
    trainer = object.__new__(ORPOTrainer)
    trainer.__dict__.update(beta=beta, accelerator=Accelerator(), is_encoder_decoder=False)
    logits = policy.clone().requires_grad_()
    labels = labels_of(input_ids, completion)
    logps = ORPOTrainer.get_batch_logps(logits, labels, average_log_prob=True)
    # ORPOTrainer.concatenated_forward's NLL: token-mean cross entropy over the chosen rows.
    chosen_logits = logits[:PAIRS, :-1].reshape(-1, VOCAB)
    nll = torch.nn.functional.cross_entropy(chosen_logits, labels[:PAIRS, 1:].reshape(-1), ignore_index=IGNORE)
    losses, chosen_rewards, rejected_rewards, log_odds_ratio, log_odds_chosen = trainer.odds_ratio_loss(
        logps[:PAIRS], logps[PAIRS:])
    loss = nll - losses.mean()  # ORPOTrainer.get_batch_loss_metrics
    loss.backward()
    metrics = {
        'rewards/chosen': float(chosen_rewards.mean()),
        'rewards/rejected': float(rejected_rewards.mean()),
        'rewards/accuracies': float((chosen_rewards > rejected_rewards).float().mean()),
        'rewards/margins': float((chosen_rewards - rejected_rewards).mean()),
        'logps/chosen': float(logps[:PAIRS].mean()),
        'logps/rejected': float(logps[PAIRS:].mean()),
        'nll_loss': float(nll), 'log_odds_ratio': float(log_odds_ratio), 'log_odds_chosen': float(log_odds_chosen),
    }
    return dict(loss='orpo', beta=beta, source=f'trl {trl.__version__} ORPOTrainer.odds_ratio_loss',
                loss_value=float(loss), metrics=metrics, grad_logits=flat(logits.grad))


def simpo_case(beta, gamma, data):
    input_ids, completion, _, policy, _, _ = data
    trainer = object.__new__(CPOTrainer)
    trainer.__dict__.update(beta=beta, simpo_gamma=gamma, label_smoothing=0.0, loss_type='simpo', alpha=0.0,
                            accelerator=Accelerator())
    logits = policy.clone().requires_grad_()
    logps = CPOTrainer.get_batch_logps(logits, labels_of(input_ids, completion), average_log_prob=True)
    losses, chosen_rewards, rejected_rewards = trainer.cpo_loss(logps[:PAIRS], logps[PAIRS:])
    loss = losses.mean()  # CPOTrainer.get_batch_loss_metrics with cpo_alpha 0
    loss.backward()
    metrics = {
        'rewards/chosen': float(chosen_rewards.mean()),
        'rewards/rejected': float(rejected_rewards.mean()),
        'rewards/accuracies': float((chosen_rewards > rejected_rewards).float().mean()),
        'rewards/margins': float((chosen_rewards - rejected_rewards).mean()),
        'logps/chosen': float(logps[:PAIRS].mean()),
        'logps/rejected': float(logps[PAIRS:].mean()),
    }
    return dict(loss='simpo', beta=beta, simpo_gamma=gamma,
                source=f'trl {trl.__version__} CPOTrainer.cpo_loss (loss_type simpo, cpo_alpha 0)',
                loss_value=float(loss), metrics=metrics, grad_logits=flat(logits.grad))


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')
    data = inputs()
    input_ids, completion, _, policy, reference, targets = data
    cases = [dpo_case('sigmoid', 0.1, data), dpo_case('sigmoid', 0.5, data), dpo_case('hinge', 0.3, data),
             dpo_case('ipo', 0.1, data), orpo_case(0.1, data), simpo_case(2.0, 0.5, data), simpo_case(2.0, 1.0, data)]
    goldens = dict(
        generator='tools/golden/trl_preference_losses.py', trl=trl.__version__, torch=torch.__version__.split('+')[0],
        pairs=PAIRS, seq=SEQ, vocab=VOCAB, input_ids=flat(input_ids), completion_mask=flat(completion),
        targets=flat(targets), policy_logits=flat(policy), reference_logits=flat(reference), cases=cases)
    with open(OUT, 'w') as handle:
        json.dump(goldens, handle, sort_keys=True)
        handle.write('\n')
    for case in cases:
        print(case['loss'], case['beta'], round(case['loss_value'], 6), sorted(case['metrics']))


if __name__ == '__main__':
    main()
