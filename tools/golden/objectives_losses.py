#!/usr/bin/python3
"""Golden values for @webtune/objectives: the SFT loss (plain, weighted, fused classifier), the
DPO family as LLaMA-Factory computes it (sigmoid with label smoothing, hinge, IPO, ORPO, SimPO,
pref_ftx) and the pairwise reward-model loss, each with the gradient of its inputs.

Run with Debian's PyTorch (`apt-get install python3-torch`):

    /usr/bin/python3 tools/golden/objectives_losses.py

It writes packages/objectives/src/__fixtures__/objectives-goldens.json, which
packages/objectives/src/goldens.test.ts reads (the test suite needs no Python).

Inputs are drawn in float32 (so a float32 GPU gets exactly the same values) and every loss runs
in float64. The formulas follow LLaMA-Factory's CustomDPOTrainer and PairwiseTrainer and TRL's
dpo_loss, written out here so they can be read beside the TypeScript:

  logps(logits, labels): labels shifted left by one, logits of the last position dropped,
      sum over positions whose label != -100 of log_softmax(logits)[label]; length = that count
  ipo, orpo, simpo work on logps / length (policy and reference alike)
  x = (pc - pr) - (rc - rr)
  sigmoid: -logsigmoid(beta x) (1 - s) - logsigmoid(-beta x) s
  hinge:   relu(1 - beta x)
  ipo:     (x - 1 / (2 beta))^2
  orpo:    -pc + beta * -logsigmoid((pc - pr) - (log1p(-exp(pc)) - log1p(-exp(pr))))
  simpo:   -logsigmoid(beta (pc - pr) - gamma)
  + ftx * (-pc_sum / length_c) per pair; loss = mean over pairs
  rewards: beta (policy - reference), or beta * policy for orpo and simpo
"""

import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
IGNORE = -100
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'packages', 'objectives', 'src', '__fixtures__', 'objectives-goldens.json')


def f32(shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(torch.float64)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def shift(labels):
    """Next-token targets: target[t] = label[t + 1], the last position ignored (same shape)."""
    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    return targets


def token_ce(logits, targets):
    rows = targets.numel()
    return F.cross_entropy(logits.reshape(rows, -1), targets.reshape(rows), ignore_index=IGNORE,
                           reduction='none').reshape(targets.shape)


def sft_cases():
    batch, seq, vocab, hidden = 2, 6, 11, 5
    labels = torch.randint(0, vocab, (batch, seq))
    labels[0, :2] = IGNORE  # a prompt
    labels[1, 4:] = IGNORE  # padding
    targets = shift(labels)
    weights = torch.rand(batch, seq, dtype=torch.float32).to(torch.float64) * (targets != IGNORE)
    counted = int((targets != IGNORE).sum())
    cases = []

    logits = f32((batch, seq, vocab), 2.0).requires_grad_()
    loss = token_ce(logits, targets).sum() / counted
    loss.backward()
    cases.append({'name': 'mean', 'logits': flat(logits), 'loss': float(loss), 'grad_logits': flat(logits.grad)})

    logits = logits.detach().clone().requires_grad_()
    loss = (token_ce(logits, targets) * weights).sum() / counted
    loss.backward()
    cases.append({'name': 'weighted', 'logits': flat(logits), 'weights': flat(weights), 'loss': float(loss),
                  'grad_logits': flat(logits.grad)})

    hidden_states = f32((batch, seq, hidden)).requires_grad_()
    head = f32((vocab, hidden)).requires_grad_()
    loss = token_ce(hidden_states @ head.T, targets).sum() / 7.0  # an explicit normalizer
    loss.backward()
    cases.append({'name': 'classifier', 'hidden': flat(hidden_states), 'head': flat(head), 'normalizer': 7.0,
                  'loss': float(loss), 'grad_hidden': flat(hidden_states.grad), 'grad_head': flat(head.grad)})
    return {'batch': batch, 'seq': seq, 'vocab': vocab, 'hidden': hidden, 'labels': flat(labels),
            'targets': flat(targets), 'cases': cases}


def logps_of(logits, targets):
    logp = -token_ce(logits, targets)
    return logp.sum(-1), (targets != IGNORE).sum(-1).to(torch.float64)


def preference_loss(kind, pc, pr, rc, rr, beta, smoothing, gamma):
    if kind == 'orpo':
        log_odds = (pc - pr) - (torch.log1p(-torch.exp(pc)) - torch.log1p(-torch.exp(pr)))
        losses = -pc + beta * -F.logsigmoid(log_odds)
        return losses, beta * pc.detach(), beta * pr.detach()
    if kind == 'simpo':
        losses = -F.logsigmoid(beta * (pc - pr) - gamma)
        return losses, beta * pc.detach(), beta * pr.detach()
    x = (pc - pr) - (rc - rr)
    if kind == 'sigmoid':
        losses = -F.logsigmoid(beta * x) * (1 - smoothing) - F.logsigmoid(-beta * x) * smoothing
    elif kind == 'hinge':
        losses = torch.relu(1 - beta * x)
    else:
        losses = (x - 1 / (2 * beta)) ** 2
    return losses, beta * (pc - rc).detach(), beta * (pr - rr).detach()


def preference_cases():
    pairs, seq, vocab = 3, 7, 9
    # Rows 0..pairs-1 chosen, pairs..2 pairs-1 rejected; a shared prompt masked, padding at the end.
    labels = torch.randint(0, vocab, (2 * pairs, seq))
    labels[:, :2] = IGNORE
    labels[1, 5:] = IGNORE
    labels[pairs + 2, 6:] = IGNORE
    targets = shift(labels)
    policy_base = f32((2 * pairs, seq, vocab), 1.5)
    reference_logits = policy_base + f32((2 * pairs, seq, vocab), 0.7)
    settings = [
        {'loss': 'sigmoid', 'beta': 0.1, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'sigmoid', 'beta': 0.5, 'label_smoothing': 0.2, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'sigmoid', 'beta': 0.1, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.5},
        {'loss': 'hinge', 'beta': 0.3, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'hinge', 'beta': 1.5, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'ipo', 'beta': 0.1, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'orpo', 'beta': 0.1, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'simpo', 'beta': 2.0, 'label_smoothing': 0.0, 'simpo_gamma': 0.5, 'ftx': 0.0},
        {'loss': 'simpo', 'beta': 2.0, 'label_smoothing': 0.0, 'simpo_gamma': 1.0, 'ftx': 0.25},
    ]
    cases = []
    for setting in settings:
        kind, beta = setting['loss'], setting['beta']
        logits = policy_base.clone().requires_grad_()
        sums, lengths = logps_of(logits, targets)
        ref_sums, _ = logps_of(reference_logits, targets)
        average = kind in ('ipo', 'orpo', 'simpo')
        policy = sums / lengths if average else sums
        reference = ref_sums / lengths if average else ref_sums
        pc, pr = policy[:pairs], policy[pairs:]
        rc, rr = reference[:pairs], reference[pairs:]
        losses, chosen_rewards, rejected_rewards = preference_loss(
            kind, pc, pr, rc, rr, beta, setting['label_smoothing'], setting['simpo_gamma'])
        sft = -(sums[:pairs] / lengths[:pairs])
        if setting['ftx'] > 0:
            losses = losses + setting['ftx'] * sft
        loss = losses.mean()
        loss.backward()
        cases.append({
            **setting,
            'loss_value': float(loss),
            'losses': flat(losses),
            'rewards_chosen': flat(chosen_rewards),
            'rewards_rejected': flat(rejected_rewards),
            'logps_chosen': flat(pc),
            'logps_rejected': flat(pr),
            'metrics': {
                'rewards/chosen': float(chosen_rewards.mean()),
                'rewards/rejected': float(rejected_rewards.mean()),
                'rewards/accuracies': float((chosen_rewards > rejected_rewards).double().mean()),
                'rewards/margins': float((chosen_rewards - rejected_rewards).mean()),
                'logps/chosen': float(pc.mean()),
                'logps/rejected': float(pr.mean()),
            },
            'grad_logits': flat(logits.grad),
        })
    return {'pairs': pairs, 'seq': seq, 'vocab': vocab, 'labels': flat(labels), 'targets': flat(targets),
            'policy_logits': flat(policy_base), 'reference_logits': flat(reference_logits), 'cases': cases}


def reward_case():
    pairs, seq, hidden = 3, 5, 6
    lengths = [5, 3, 4, 2, 5, 1]  # chosen rows then rejected rows
    states = f32((2 * pairs, seq, hidden)).requires_grad_()
    weight = f32((1, hidden), 0.5).requires_grad_()
    bias = f32((1,), 0.5).requires_grad_()
    scores = (states @ weight.T + bias).squeeze(-1)  # [rows, seq]
    last = scores[torch.arange(2 * pairs), torch.tensor(lengths) - 1]
    loss = -F.logsigmoid(last[:pairs] - last[pairs:]).mean()
    loss.backward()
    return {'pairs': pairs, 'seq': seq, 'hidden': hidden, 'lengths': lengths, 'states': flat(states),
            'weight': flat(weight), 'bias': flat(bias), 'scores': flat(last), 'loss': float(loss),
            'grad_states': flat(states.grad), 'grad_weight': flat(weight.grad), 'grad_bias': flat(bias.grad)}


def main():
    goldens = {'generator': 'tools/golden/objectives_losses.py', 'torch': torch.__version__,
               'sft': sft_cases(), 'preference': preference_cases(), 'reward': reward_case()}
    with open(OUT, 'w') as handle:
        json.dump(goldens, handle)
    print(f'wrote {os.path.relpath(OUT)}')


if __name__ == '__main__':
    main()
