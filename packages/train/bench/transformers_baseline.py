#!/usr/bin/env python3
"""The baseline side of bench/versus-transformers.mjs: what a user would run on the CPU.

One case per process (so its peak resident memory is its own), given as JSON on argv[1]:
  {"case": "lora-sft" | "prefill" | "decode", "config": {Transformers LlamaConfig fields},
   "batch", "seq", "prompt", "new_tokens", "r", "alpha", "warmup", "repeats", "seed"}

- lora-sft: transformers LlamaForCausalLM + peft LoRA (r, alpha, all-linear, dropout 0), every
  token trained, torch.optim.AdamW on the adapter (lr 1e-3), clip_grad_norm_(1.0): forward with
  labels, backward, clip, step, zero_grad; the time of one whole step.
- prefill: what generate() does before its first token: model(input_ids, use_cache=True,
  logits_to_keep=1) over a [1, prompt] batch under no_grad (the KV cache is built, logits only at
  the last position), then the argmax of those logits (the first new token), as webtune's timing
  covers the KV cache, the forward, the head at the last position, the argmax and reading the id back.
- decode: model.generate (greedy, exactly new_tokens tokens, KV cache); a streamer stamps the first
  new token (the end of prefill) and the last; decode speed = (new_tokens - 1) / that span.

float32, random weights (speed depends on the shape only), SDPA attention (Transformers' default),
torch.set_num_threads(os.cpu_count()). Timings are medians of `repeats` after `warmup` runs. Prints
one JSON line: the median seconds, every timed run, tokens per run, the peak resident set above what
the process held after importing the libraries, and the versions and thread count.
"""
import json
import os
import resource
import statistics
import sys
import time


def rss_bytes():
    with open('/proc/self/statm') as handle:
        return int(handle.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    spec = json.loads(sys.argv[1])
    import peft
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(spec.get('seed', 0))
    baseline_rss = rss_bytes()
    config = transformers.LlamaConfig(**spec['config'])
    model = transformers.LlamaForCausalLM(config).float()
    vocab = config.vocab_size
    times = []
    if spec['case'] == 'lora-sft':
        model = peft.get_peft_model(model, peft.LoraConfig(r=spec['r'], lora_alpha=spec['alpha'], lora_dropout=0.0,
                                                           target_modules='all-linear', task_type='CAUSAL_LM'))
        model.train()
        ids = (torch.arange(spec['batch']).view(-1, 1) * 7919 + torch.arange(spec['seq']).view(1, -1) * 104729) % vocab
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-3)
        tokens = spec['batch'] * spec['seq']
        for run in range(spec['warmup'] + spec['repeats']):
            started = time.perf_counter()
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.perf_counter() - started
            if run >= spec['warmup']:
                times.append(elapsed)
    else:
        model.eval()
        prompt = torch.tensor([[1] + [3 + (i * 7919) % (vocab - 3) for i in range(spec['prompt'] - 1)]])
        if spec['case'] == 'prefill':
            tokens = spec['prompt']
            for run in range(spec['warmup'] + spec['repeats']):
                with torch.no_grad():
                    started = time.perf_counter()
                    logits = model(input_ids=prompt, use_cache=True, logits_to_keep=1).logits
                    int(logits[0, -1].argmax())
                    elapsed = time.perf_counter() - started
                if run >= spec['warmup']:
                    times.append(elapsed)
        else:
            class Stamps:
                """A generate() streamer: put() gets the prompt, then each new token."""
                def __init__(self):
                    self.stamps = []

                def put(self, _):
                    self.stamps.append(time.perf_counter())

                def end(self):
                    pass

            tokens = spec['new_tokens'] - 1
            for run in range(spec['warmup'] + spec['repeats']):
                stamps = Stamps()
                with torch.no_grad():
                    out = model.generate(prompt, max_new_tokens=spec['new_tokens'], min_new_tokens=spec['new_tokens'],
                                         do_sample=False, streamer=stamps, pad_token_id=0, eos_token_id=None)
                assert out.shape[1] == spec['prompt'] + spec['new_tokens'], out.shape
                # stamps[0]: the prompt, [1]: the first new token (prefill done), [-1]: the last token.
                if run >= spec['warmup']:
                    times.append(stamps.stamps[-1] - stamps.stamps[1])
    median = statistics.median(times)
    print(json.dumps(dict(
        case=spec['case'], seconds=median, runs=times, tokens=tokens, tokens_per_second=tokens / median,
        peak_rss_above_baseline_bytes=peak_rss_bytes() - baseline_rss,
        threads=torch.get_num_threads(), cpu_count=os.cpu_count(), torch=torch.__version__,
        transformers=transformers.__version__, peft=peft.__version__,
        attention=model.config._attn_implementation if spec['case'] != 'lora-sft' else
        model.base_model.model.config._attn_implementation,
    )))


if __name__ == '__main__':
    main()
