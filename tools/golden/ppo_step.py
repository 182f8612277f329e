#!/usr/bin/env python3
"""Golden values for @webtune/objectives' PPO pieces: one PPO step as LLaMA-Factory runs it.

LLaMA-Factory's CustomPPOTrainer extends TRL 0.9's PPOTrainer, which TRL 1.13 no longer ships;
its formulas are written out here in PyTorch, one function each, as TRL 0.9 defines them
(compute_rewards, compute_advantages, masked_whiten, loss, AdaptiveKLController). The running
score moments come from TRL 1.13 itself (trl.experimental.bco's RunningMoments, the same class).

    /work/venv/bin/python tools/golden/ppo_step.py

writes packages/objectives/src/__fixtures__/ppo-goldens.json, read by
packages/objectives/src/ppo/ppo.test.ts.
"""

import json
import os
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from trl.experimental.bco.bco_trainer import RunningMoments

torch.manual_seed(77)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'packages', 'objectives', 'src', '__fixtures__', 'ppo-goldens.json')
ROWS, SEQ, VOCAB = 3, 7, 6
GAMMA, LAM, CLIP, CLIP_VALUE, VF_COEF = 1.0, 0.95, 0.2, 0.2, 0.1
KL_COEF, TARGET, HORIZON = 0.2, 6.0, 10000


def f32(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(torch.float64)


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def masked_var(x, mask):
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    return var * n / (n - 1)


def masked_whiten(x, mask, shift_mean=True):
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def compute_rewards(scores, logprobs, ref_logprobs, masks):
    rewards, kls = [], []
    for score, logprob, ref_logprob, mask in zip(scores, logprobs, ref_logprobs, masks):
        kl = logprob - ref_logprob
        reward = -KL_COEF * kl
        last = mask.nonzero()[-1]
        reward[last] += score
        rewards.append(reward)
        kls.append(kl)
    return torch.stack(rewards), torch.stack(kls)


def compute_advantages(values, rewards, mask):
    values = values * mask
    rewards = rewards * mask
    reversed_ = []
    last = 0
    length = rewards.shape[-1]
    for t in reversed(range(length)):
        nextvalues = values[:, t + 1] if t < length - 1 else 0.0
        delta = rewards[:, t] + GAMMA * nextvalues - values[:, t]
        last = delta + GAMMA * LAM * last
        reversed_.append(last)
    advantages = torch.stack(reversed_[::-1]).transpose(0, 1)
    returns = advantages + values
    advantages = masked_whiten(advantages, mask)
    return values, advantages.detach(), returns


def ppo_loss(old_logprobs, values, logprobs, vpreds, mask, advantages, returns):
    vpredclipped = torch.max(torch.min(vpreds, values + CLIP_VALUE), values - CLIP_VALUE)
    vf_losses1 = (vpreds - returns) ** 2
    vf_losses2 = (vpredclipped - returns) ** 2
    vf_loss = 0.5 * masked_mean(torch.max(vf_losses1, vf_losses2), mask)
    ratio = torch.exp(logprobs - old_logprobs)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - CLIP, 1.0 + CLIP)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), mask)
    return pg_loss + VF_COEF * vf_loss, pg_loss, vf_loss


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


# Response masks over positions (position t predicts token t + 1): queries of 2, 3, 1 tokens.
mask = torch.zeros(ROWS, SEQ, dtype=torch.float64)
for r, (start, end) in enumerate([(1, 5), (2, 6), (0, 3)]):
    mask[r, start:end] = 1
ids = torch.randint(0, VOCAB, (ROWS, SEQ + 1))
targets = ids[:, 1:]
logits = f32(ROWS, SEQ, VOCAB).requires_grad_(True)
logprobs = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
old_logprobs = (logprobs.detach() + f32(ROWS, SEQ, scale=0.3)) * mask
ref_logprobs = (logprobs.detach() + f32(ROWS, SEQ, scale=0.5)) * mask
old_values = f32(ROWS, SEQ) * mask
vpreds = (old_values + f32(ROWS, SEQ, scale=0.3)).requires_grad_(True)
raw_scores = f32(ROWS, scale=2.0)

running = RunningMoments(accelerator=SimpleNamespace(use_distributed=False))
earlier = f32(5)
running.update(earlier.float())  # an earlier batch
running.update(raw_scores.float())
scores_norm = (raw_scores - running.mean) / (running.std + torch.finfo(torch.float32).eps)

cases = []
for name, scores, whiten_rewards in [('plain', raw_scores, False), ('score-norm-whiten-rewards', scores_norm, True)]:
    rewards, kls = compute_rewards(scores, old_logprobs * mask, ref_logprobs, mask)
    if whiten_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False)
    values, advantages, returns = compute_advantages(old_values, rewards, mask)
    logits.grad = None
    vpreds.grad = None
    logprobs = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    loss, pg_loss, vf_loss = ppo_loss(old_logprobs, values, logprobs * mask, vpreds, mask, advantages, returns)
    loss.backward()
    mean_kl = (kls * mask).sum(1).mean()
    cases.append({
        'name': name,
        'whiten_rewards': whiten_rewards,
        'scores': flat(scores),
        'rewards': flat(rewards * mask),
        'advantages': flat(advantages * mask),
        'returns': flat(returns * mask),
        'loss': float(loss.detach()),
        'policy_loss': float(pg_loss.detach()),
        'value_loss': float(vf_loss.detach()),
        'mean_kl': float(mean_kl),
        'grad_logits': flat(logits.grad),
        'grad_values': flat(vpreds.grad),
    })

kl_after = KL_COEF * (1 + max(-0.2, min(0.2, cases[0]['mean_kl'] / TARGET - 1)) * ROWS / HORIZON)
golden = {
    'rows': ROWS, 'seq': SEQ, 'vocab': VOCAB,
    'gamma': GAMMA, 'lam': LAM, 'clip': CLIP, 'clip_value': CLIP_VALUE, 'vf_coef': VF_COEF,
    'kl_coef': KL_COEF, 'target': TARGET, 'kl_coef_after': kl_after,
    'mask': flat(mask), 'targets': flat(targets), 'logits': flat(logits),
    'old_logprobs': flat(old_logprobs), 'ref_logprobs': flat(ref_logprobs),
    'old_values': flat(old_values), 'vpreds': flat(vpreds),
    'earlier_scores': flat(earlier), 'raw_scores': flat(raw_scores),
    'running_mean': float(running.mean), 'running_std': float(running.std),
    'cases': cases,
}
with open(OUT, 'w') as f:
    json.dump(golden, f, indent=1)
    f.write('\n')
print('wrote', OUT, [(c['name'], c['loss']) for c in cases])
