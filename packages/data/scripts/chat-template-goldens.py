"""Renders the official chat templates in ../shared/fixtures/chat_templates with Python's Jinja2,
set up the way Hugging Face Transformers renders chat templates (sandboxed environment, trim_blocks,
lstrip_blocks, loop controls, a `tojson` that keeps non-ASCII text and key order, `raise_exception`),
and writes the results as golden strings for src/templates/jinja-template.test.ts.

The goldens come from the real Jinja2, independent of the JavaScript implementation under test.
`strftime_now` is not defined, so Llama 3.x templates fall back to their fixed date (26 Jul 2024),
which is also what webtune renders by default.

Run: python3 packages/data/scripts/chat-template-goldens.py  (needs jinja2; tested with 3.1.6)
"""

import json
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.environ.get("WEBTUNE_FIXTURES", os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures"))
TEMPLATES = os.path.join(FIXTURES, "chat_templates")
OUTPUT = os.path.join(HERE, "..", "src", "templates", "__fixtures__", "chat-template-goldens.json")

SPECIAL_TOKENS = {
    "Qwen-Qwen2.5-7B-Instruct.jinja": {"bos_token": "", "eos_token": "<|im_end|>"},
    "Qwen-Qwen3-0.6B.jinja": {"bos_token": "", "eos_token": "<|im_end|>"},
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": {
        "bos_token": "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
        "eos_token": "<\uff5cend\u2581of\u2581sentence\uff5c>",
    },
    "google-gemma-2-2b-it.jinja": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "meta-llama-Llama-3.1-8B-Instruct.jinja": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "meta-llama-Llama-3.2-3B-Instruct.jinja": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "microsoft-Phi-3.5-mini-instruct.jinja": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "城市 name"}},
            "required": ["city"],
        },
    },
}

TOOL_CALL = {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}

CASES = [
    {
        "name": "single-turn",
        "messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi, how can I help?"}],
    },
    {
        "name": "multi-turn",
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "  And 3+3? \n"},
            {"role": "assistant", "content": "6, of course. "},
        ],
    },
    {
        "name": "system-multi-turn",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "你好"},
            {"role": "assistant", "content": "你好！有什么可以帮你？"},
            {"role": "user", "content": "Say \"bye\" in <b>bold</b>."},
            {"role": "assistant", "content": "<b>bye</b>"},
        ],
    },
    {
        "name": "generation-prompt",
        "messages": [
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Tell me a joke."},
        ],
        "add_generation_prompt": True,
    },
    {
        "name": "system-generation-prompt",
        "messages": [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Good morning"},
        ],
        "add_generation_prompt": True,
    },
    {
        "name": "generation-prompt-no-thinking",
        "messages": [{"role": "user", "content": "Hello!"}],
        "add_generation_prompt": True,
        "extra": {"enable_thinking": False},
    },
    {
        "name": "reasoning",
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "<think>\nAdd two and two.\n</think>\n\nIt is 4."},
            {"role": "user", "content": "And 3+3?"},
            {"role": "assistant", "content": "<think>\nAdd three and three.\n</think>\n\nIt is 6."},
        ],
    },
    {
        "name": "tool-call",
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "system", "content": "You can look up the weather."},
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call00001", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
            {"role": "assistant", "content": "It is 21 degrees and clear in Paris."},
        ],
    },
    {
        "name": "tool-call-no-system",
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call00001", "content": "{\"temperature\": 21}"},
            {"role": "assistant", "content": "21 degrees."},
        ],
    },
    {
        "name": "tool-generation-prompt",
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "add_generation_prompt": True,
    },
]


def raise_exception(message):
    raise TemplateError(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def main():
    env = environment()
    results = []
    for file_name in sorted(os.listdir(TEMPLATES)):
        if not file_name.endswith(".jinja"):
            continue
        with open(os.path.join(TEMPLATES, file_name), encoding="utf-8") as handle:
            template = env.from_string(handle.read())
        for case in CASES:
            context = dict(SPECIAL_TOKENS[file_name])
            context["messages"] = case["messages"]
            context["add_generation_prompt"] = case.get("add_generation_prompt", False)
            if "tools" in case:
                context["tools"] = case["tools"]
            context.update(case.get("extra", {}))
            entry = {"template": file_name, "case": case["name"]}
            try:
                entry["output"] = template.render(**context)
            except Exception as error:  # noqa: BLE001 - record what the template raised
                entry["error"] = f"{type(error).__name__}: {error}"
            results.append(entry)
    document = {
        "generator": "packages/data/scripts/chat-template-goldens.py",
        "jinja2": __import__("jinja2").__version__,
        "specialTokens": SPECIAL_TOKENS,
        "cases": CASES,
        "results": results,
    }
    with open(OUTPUT, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    print(f"wrote {len(results)} renderings to {os.path.relpath(OUTPUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
