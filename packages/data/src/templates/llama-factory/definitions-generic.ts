/**
 * LLaMA-Factory's generic templates and those of smaller model families, as data. Each entry states
 * what `register_template` in LLaMA-Factory's `src/llamafactory/data/template.py` declares under the
 * same name; `resolveDefinition` fills in its defaults.
 */
import { BOS, EOS, type TemplateDefinition } from './slots.js';

const CHATML_USER = '<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n';
const CHATML_ASSISTANT = '{{content}}<|im_end|>\n';
const CHATML_SYSTEM = '<|im_start|>system\n{{content}}<|im_end|>\n';
const CHATML_TOOL = '<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n';
const GRANITE_USER =
  '<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>';
const GRANITE_SYSTEM = '<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n';

export const GENERIC_TEMPLATES: Record<string, TemplateDefinition> = {
  default: {
    user: ['Human: {{content}}', EOS, '\nAssistant:'],
    assistant: ['{{content}}', EOS, '\n'],
    system: ['System: {{content}}', EOS, '\n'],
  },
  empty: { assistant: ['{{content}}'] },
  fewshot: { assistant: ['{{content}}\n\n'], efficientEos: true },
  alpaca: {
    user: ['### Instruction:\n{{content}}\n\n### Response:\n'],
    assistant: ['{{content}}', EOS, '\n\n'],
    defaultSystem:
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n',
  },
  vicuna: {
    user: ['USER: {{content}} ASSISTANT:'],
    defaultSystem:
      'A chat between a curious user and an artificial intelligence assistant. ' +
      "The assistant gives helpful, detailed, and polite answers to the user's questions.",
  },
  zephyr: {
    user: ['<|user|>\n{{content}}', EOS, '<|assistant|>\n'],
    system: ['<|system|>\n{{content}}', EOS],
    defaultSystem: 'You are Zephyr, a helpful assistant.',
  },
  chatml: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    observation: [CHATML_TOOL],
    stopWords: ['<|im_end|>', '<|im_start|>'],
    replaceEos: true,
  },
  chatml_de: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    observation: [CHATML_TOOL],
    defaultSystem: 'Du bist ein freundlicher und hilfsbereiter KI-Assistent.',
    stopWords: ['<|im_end|>', '<|im_start|>'],
    replaceEos: true,
  },
  cpm4: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    observation: [CHATML_TOOL],
    prefix: [BOS],
    stopWords: ['<|im_end|>'],
  },
  yi: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    stopWords: ['<|im_end|>'],
  },
  opencoder: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    observation: [CHATML_TOOL],
    defaultSystem: 'You are OpenCoder, created by OpenCoder Team.',
    stopWords: ['<|im_end|>'],
  },
  intern2: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    prefix: [BOS],
    defaultSystem:
      'You are an AI assistant whose name is InternLM (书生·浦语).\n' +
      '- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI Laboratory ' +
      '(上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n' +
      '- InternLM (书生·浦语) can understand and communicate fluently in the language ' +
      'chosen by the user such as English and 中文.',
    stopWords: ['<|im_end|>'],
  },
  sailor: {
    user: ['<|im_start|>question\n{{content}}<|im_end|>\n<|im_start|>answer\n'],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    defaultSystem:
      'You are an AI assistant named Sailor created by Sea AI Lab. ' +
      'Your answer should be friendly, unbiased, faithful, informative and detailed.',
    stopWords: ['<|im_end|>'],
  },
  breeze: { user: ['[INST] {{content}} [/INST] '], prefix: [BOS], efficientEos: true },
  cohere: {
    user: [
      '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>',
    ],
    system: ['<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>'],
    prefix: [BOS],
  },
  exaone: {
    user: ['[|user|]{{content}}\n[|assistant|]'],
    assistant: ['{{content}}', EOS, '\n'],
    system: ['[|system|]{{content}}[|endofturn|]\n'],
  },
  falcon: { user: ['User: {{content}}\nFalcon:'], assistant: ['{{content}}\n'], efficientEos: true },
  falcon_h1: {
    user: [CHATML_USER],
    assistant: [CHATML_ASSISTANT],
    system: [CHATML_SYSTEM],
    observation: [CHATML_TOOL],
    prefix: [BOS],
    stopWords: ['<|im_end|>', '<|end_of_text|>'],
  },
  granite3: {
    user: [GRANITE_USER],
    assistant: ['{{content}}<|end_of_text|>\n'],
    system: [GRANITE_SYSTEM],
  },
  granite4: {
    user: [GRANITE_USER],
    assistant: ['{{content}}<|end_of_text|>\n'],
    system: [GRANITE_SYSTEM],
    function: ['{{content}}<|end_of_text|>\n'],
    functionFormat: 'default',
    observation: [
      '<|start_of_role|>tool<|end_of_role|>{{content}}<|end_of_text|>\n<|start_of_role|>assistant\n',
    ],
    toolFormat: 'default',
    stopWords: ['<|end_of_text|>'],
    defaultSystem: 'You are Granite, developed by IBM. You are a helpful AI assistant.',
  },
  index: { user: ['reserved_0{{content}}reserved_1'], system: ['<unk>{{content}}'], efficientEos: true },
  olmo: { user: ['<|user|>\n{{content}}<|assistant|>\n'], prefix: [EOS] },
  openchat: {
    user: ['GPT4 Correct User: {{content}}', EOS, 'GPT4 Correct Assistant:'],
    prefix: [BOS],
  },
  'openchat-3.6': {
    user: [
      '<|start_header_id|>GPT4 Correct User<|end_header_id|>\n\n{{content}}<|eot_id|>' +
        '<|start_header_id|>GPT4 Correct Assistant<|end_header_id|>\n\n',
    ],
    prefix: [BOS],
    stopWords: ['<|eot_id|>'],
  },
  seed_coder: {
    user: [BOS, 'user\n{{content}}', EOS, BOS, 'assistant\n'],
    system: [BOS, 'system\n{{content}}', EOS],
    defaultSystem:
      'You are an AI programming assistant, utilizing the Seed-Coder model, developed by ByteDance Seed, ' +
      'and you only answer questions related to computer science. For politically sensitive questions, ' +
      'security and privacy issues, and other non-computer science questions, you will refuse to answer.\n\n',
  },
  solar: {
    user: ['### User:\n{{content}}\n\n### Assistant:\n'],
    system: ['### System:\n{{content}}\n\n'],
    efficientEos: true,
  },
  starchat: {
    user: ['<|user|>\n{{content}}<|end|>\n<|assistant|>'],
    assistant: ['{{content}}<|end|>\n'],
    system: ['<|system|>\n{{content}}<|end|>\n'],
    stopWords: ['<|end|>'],
  },
  xuanyuan: {
    user: ['Human: {{content}} Assistant:'],
    defaultSystem:
      '以下是用户和人工智能助手之间的对话。用户以Human开头，人工智能助手以Assistant开头，' +
      '会对人类提出的问题给出有帮助、高质量、详细和礼貌的回答，并且总是拒绝参与与不道德、' +
      '不安全、有争议、政治敏感等相关的话题、问题和指示。\n',
  },
};
