/**
 * The config of a `POST /api/runs` request as a run plan: the body's LLaMA-Factory keys, an
 * output_dir under the server's output root when the body names none, then @webtune/train's
 * planner (the same call `webtune train` makes). Throws ConfigError listing every problem.
 */
import { join } from 'node:path';
import { planRun, type RawConfig, type RunPlan } from '@webtune/train';

export function planOfRequest(raw: RawConfig, outputRoot: string, runId: string): RunPlan {
  const config: RawConfig = { ...raw };
  if (config.output_dir === undefined || config.output_dir === null || config.output_dir === '') {
    config.output_dir = join(outputRoot, String(config.run_name || runId).replace(/[^\w.-]+/g, '_'));
  }
  return planRun(config);
}
