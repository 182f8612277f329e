/**
 * LLaMA-Factory's templates for the model families webtune runs or is about to run (Llama, Mistral,
 * Qwen, Gemma, Phi, SmolLM, DeepSeek, GLM), as data. Each entry states what `register_template` in
 * LLaMA-Factory's `src/llamafactory/data/template.py` declares under the same name.
 */
import { BOS, EOS, type TemplateDefinition, token } from './slots.js';

const QWEN_USER = '<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n';
const QWEN_ASSISTANT = '{{content}}<|im_end|>\n';
const QWEN_SYSTEM = '<|im_start|>system\n{{content}}<|im_end|>\n';
const QWEN_OBSERVATION =
  '<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n';
const GEMMA_USER = '<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n';
const GEMMA_OBSERVATION = '<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n';
const LLAMA3_HEADER = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
const PHI_USER = '<|user|>\n{{content}}<|end|>\n<|assistant|>\n';

const qwenFamily: TemplateDefinition = {
  user: [QWEN_USER],
  assistant: [QWEN_ASSISTANT],
  system: [QWEN_SYSTEM],
  function: [QWEN_ASSISTANT],
  functionFormat: 'qwen',
  observation: [QWEN_OBSERVATION],
  toolFormat: 'qwen',
  stopWords: ['<|im_end|>'],
  replaceEos: true,
};

const gemmaFamily: TemplateDefinition = {
  user: [GEMMA_USER],
  assistant: ['{{content}}<end_of_turn>\n'],
  system: ['{{content}}\n\n'],
  observation: [GEMMA_OBSERVATION],
  prefix: [BOS],
  stopWords: ['<end_of_turn>'],
  replaceEos: true,
  kind: 'llama2',
};

const llama2Family: TemplateDefinition = {
  user: [BOS, '[INST] {{content}} [/INST]'],
  system: ['<<SYS>>\n{{content}}\n<</SYS>>\n\n'],
  kind: 'llama2',
};

const glm4Family: TemplateDefinition = {
  user: ['<|user|>\n{{content}}<|assistant|>'],
  assistant: ['\n{{content}}'],
  system: ['<|system|>\n{{content}}'],
  function: ['{{content}}'],
  functionFormat: 'glm4',
  observation: ['<|observation|>\n{{content}}<|assistant|>'],
  toolFormat: 'glm4',
  prefix: ['[gMASK]<sop>'],
  stopWords: ['<|user|>', '<|observation|>'],
  efficientEos: true,
};

const deepseek3Family: TemplateDefinition = {
  user: ['<｜User｜>{{content}}<｜Assistant｜>'],
  prefix: [BOS],
};

const smollmFamily: TemplateDefinition = {
  user: [QWEN_USER],
  assistant: [QWEN_ASSISTANT],
  system: [QWEN_SYSTEM],
  stopWords: ['<|im_end|>'],
};

export const FAMILY_TEMPLATES: Record<string, TemplateDefinition> = {
  llama2: llama2Family,
  llama2_zh: { ...llama2Family, defaultSystem: 'You are a helpful assistant. 你是一个乐于助人的助手。' },
  llama3: {
    user: [`${LLAMA3_HEADER('user')}{{content}}<|eot_id|>${LLAMA3_HEADER('assistant')}`],
    assistant: ['{{content}}<|eot_id|>'],
    system: [`${LLAMA3_HEADER('system')}{{content}}<|eot_id|>`],
    function: ['{{content}}<|eot_id|>'],
    functionFormat: 'llama3',
    observation: [`${LLAMA3_HEADER('ipython')}{{content}}<|eot_id|>${LLAMA3_HEADER('assistant')}`],
    toolFormat: 'llama3',
    prefix: [BOS],
    stopWords: ['<|eot_id|>', '<|eom_id|>'],
    replaceEos: true,
  },
  llama4: {
    user: [
      '<|header_start|>user<|header_end|>\n\n{{content}}<|eot|><|header_start|>assistant<|header_end|>\n\n',
    ],
    assistant: ['{{content}}<|eot|>'],
    system: ['<|header_start|>system<|header_end|>\n\n{{content}}<|eot|>'],
    function: ['{{content}}<|eot|>'],
    functionFormat: 'llama3',
    observation: [
      '<|header_start|>ipython<|header_end|>\n\n{{content}}<|eot|><|header_start|>assistant<|header_end|>\n\n',
    ],
    toolFormat: 'llama3',
    prefix: [BOS],
    stopWords: ['<|eot|>', '<|eom|>'],
    replaceEos: true,
  },
  mistral: {
    user: ['[INST] {{content}}[/INST]'],
    assistant: [' {{content}}', EOS],
    system: ['{{content}}\n\n'],
    function: ['[TOOL_CALLS] {{content}}', EOS],
    functionFormat: 'mistral',
    observation: ['[TOOL_RESULTS] {"content": {{content}}}[/TOOL_RESULTS]'],
    toolFormat: 'mistral',
    prefix: [BOS],
    kind: 'llama2',
  },
  ministral: {
    user: ['[INST]{{content}}[/INST]'],
    system: ['{{content}}\n\n'],
    function: ['[TOOL_CALLS]{{content}}', EOS],
    functionFormat: 'mistral',
    observation: ['[TOOL_RESULTS]{"content": {{content}}}[/TOOL_RESULTS]'],
    toolFormat: 'mistral',
    prefix: [BOS],
    kind: 'llama2',
  },
  qwen: {
    ...qwenFamily,
    defaultSystem: 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.',
  },
  qwen3: { ...qwenFamily, kind: 'reasoning' },
  qwen3_nothink: qwenFamily,
  gemma: gemmaFamily,
  gemma2: { ...gemmaFamily, stopWords: ['<eos>', '<end_of_turn>'], replaceEos: false, efficientEos: true },
  gemma3: gemmaFamily,
  phi: {
    user: [PHI_USER],
    assistant: ['{{content}}<|end|>\n'],
    system: ['<|system|>\n{{content}}<|end|>\n'],
    stopWords: ['<|end|>'],
    replaceEos: true,
  },
  // LLaMA-Factory's prefix for phi_small is a set that names neither BOS nor EOS, so it writes nothing.
  phi_small: {
    user: [PHI_USER],
    assistant: ['{{content}}<|end|>\n'],
    system: ['<|system|>\n{{content}}<|end|>\n'],
    stopWords: ['<|end|>'],
    replaceEos: true,
  },
  phi4: {
    user: ['<|im_start|>user<|im_sep|>{{content}}<|im_end|><|im_start|>assistant<|im_sep|>'],
    assistant: ['{{content}}<|im_end|>'],
    system: ['<|im_start|>system<|im_sep|>{{content}}<|im_end|>'],
    stopWords: ['<|im_end|>'],
    replaceEos: true,
  },
  phi4_mini: {
    user: ['<|user|>{{content}}<|end|><|assistant|>'],
    assistant: ['{{content}}<|end|>'],
    system: ['<|system|>{{content}}<|end|>'],
    toolSlots: ['<|tool|>{{content}}<|/tool|>'],
    stopWords: ['<|end|>'],
    replaceEos: true,
  },
  smollm: smollmFamily,
  smollm2: {
    ...smollmFamily,
    defaultSystem: 'You are a helpful AI assistant named SmolLM, trained by Hugging Face.',
  },
  deepseek: {
    user: ['User: {{content}}\n\nAssistant:'],
    system: ['{{content}}\n\n'],
    prefix: [BOS],
  },
  deepseek3: deepseek3Family,
  deepseekr1: { ...deepseek3Family, kind: 'reasoning' },
  deepseekcoder: {
    user: ['### Instruction:\n{{content}}\n### Response:'],
    assistant: ['\n{{content}}\n<|EOT|>\n'],
    prefix: [BOS],
    defaultSystem:
      'You are an AI programming assistant, utilizing the DeepSeek Coder model, ' +
      'developed by DeepSeek Company, and you only answer questions related to computer science. ' +
      'For politically sensitive questions, security and privacy issues, ' +
      'and other non-computer science questions, you will refuse to answer.\n',
  },
  glm4: glm4Family,
  chatglm3: {
    user: [token('<|user|>'), '\n', '{{content}}', token('<|assistant|>')],
    assistant: ['\n', '{{content}}'],
    system: [token('<|system|>'), '\n', '{{content}}'],
    function: ['{{content}}'],
    functionFormat: 'glm4',
    observation: [token('<|observation|>'), '\n', '{{content}}', token('<|assistant|>')],
    toolFormat: 'glm4',
    prefix: [token('[gMASK]'), token('sop')],
    stopWords: ['<|user|>', '<|observation|>'],
    efficientEos: true,
  },
  gpt_oss: {
    user: ['<|start|>user<|message|>{{content}}<|end|><|start|>assistant'],
    assistant: ['{{content}}'],
    system: ['<|start|>system<|message|>{{content}}<|end|>'],
    defaultSystem: 'You are ChatGPT, a large language model trained by OpenAI.',
    thoughtWords: ['<|channel|>analysis<|message|>', '<|end|><|start|>assistant<|channel|>final<|message|>'],
    efficientEos: true,
    kind: 'reasoning',
  },
};

/** Names webtune used before it took LLaMA-Factory's, kept as aliases. */
export const TEMPLATE_ALIASES: Record<string, string> = { deepseek_r1: 'deepseekr1' };
