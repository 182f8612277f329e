"""Learning rates of Transformers' schedulers, step by step, for packages/train's schedule tests.

Run: /work/venv/bin/python tools/golden/lr-schedules.py
Writes packages/train/src/schedule/__fixtures__/lr-schedules.json.
"""

import json
import pathlib

import torch
import transformers
from transformers import get_scheduler

LEARNING_RATE = 1e-3
TOTAL_STEPS = 20
WARMUP_STEPS = 4
# (name, lr_scheduler_type, warmup steps, lr_scheduler_kwargs)
CASES = [
    ("linear", "linear", WARMUP_STEPS, {}),
    ("cosine", "cosine", WARMUP_STEPS, {}),
    ("cosine 1.5 cycles", "cosine", WARMUP_STEPS, {"num_cycles": 1.5}),
    ("constant_with_warmup", "constant_with_warmup", WARMUP_STEPS, {}),
    ("cosine_with_restarts", "cosine_with_restarts", WARMUP_STEPS, {}),
    ("cosine_with_restarts 3 cycles", "cosine_with_restarts", WARMUP_STEPS, {"num_cycles": 3}),
    ("polynomial", "polynomial", WARMUP_STEPS, {}),
    ("polynomial power 2", "polynomial", WARMUP_STEPS, {"power": 2.0, "lr_end": 1e-4}),
    ("inverse_sqrt", "inverse_sqrt", WARMUP_STEPS, {}),
    ("inverse_sqrt no warmup", "inverse_sqrt", 0, {"timescale": 5}),
    ("cosine_with_min_lr rate", "cosine_with_min_lr", WARMUP_STEPS, {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr", "cosine_with_min_lr", WARMUP_STEPS, {"min_lr": 2e-4, "num_cycles": 0.25}),
    ("warmup_stable_decay", "warmup_stable_decay", WARMUP_STEPS, {"num_decay_steps": 6}),
    (
        "warmup_stable_decay shapes",
        "warmup_stable_decay",
        WARMUP_STEPS,
        {"num_decay_steps": 5, "num_stable_steps": 8, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1},
    ),
    ("warmup_stable_decay linear", "warmup_stable_decay", WARMUP_STEPS, {"num_decay_steps": 10, "decay_type": "linear"}),
]


def rates(kind, warmup, kwargs):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=LEARNING_RATE)
    scheduler = get_scheduler(
        kind,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=TOTAL_STEPS,
        scheduler_specific_kwargs=kwargs,
    )
    values = []
    for _ in range(TOTAL_STEPS + 3):
        values.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return values


cases = [
    {"name": name, "type": kind, "warmupSteps": warmup, "kwargs": kwargs, "rates": rates(kind, warmup, kwargs)}
    for name, kind, warmup, kwargs in CASES
]
out = pathlib.Path(__file__).resolve().parents[2] / "packages/train/src/schedule/__fixtures__/lr-schedules.json"
out.write_text(
    json.dumps(
        {
            "source": f"transformers {transformers.__version__} get_scheduler (tools/golden/lr-schedules.py)",
            "learningRate": LEARNING_RATE,
            "totalSteps": TOTAL_STEPS,
            "cases": cases,
        },
        indent=1,
    )
    + "\n"
)
print(f"wrote {out} ({len(cases)} cases)")
