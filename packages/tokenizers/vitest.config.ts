import { cpuTests } from '../../tools/config/test-config.ts';

// The first test of a file parses a 9-11 MB tokenizer.json (Qwen3, Llama-3): seconds on a busy 2-core runner.
export default cpuTests(30_000);
