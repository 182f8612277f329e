/**
 * Where the hub is and how to reach it, read from the same environment variables as huggingface_hub:
 * HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, and for the cache folder HF_HUB_CACHE, else HF_HOME/hub,
 * else ~/.cache/huggingface/hub. The environment is passed in (process.env in Node, {} in a browser).
 */

/** How to reach the hub. */
export interface HubSettings {
  /** Hub address, without a trailing slash (default https://huggingface.co). */
  endpoint: string;
  /** Access token for private or gated repositories (HF_TOKEN). */
  token: string | null;
  /** Never touch the network; read only what is in the cache (HF_HUB_OFFLINE=1). */
  offline: boolean;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

type Environment = Readonly<Record<string, string | undefined>>;

/** Whether an environment flag is on, as huggingface_hub reads them ("1", "true", "yes", "on"). */
export function flagIsOn(value: string | undefined): boolean {
  return ['1', 'on', 'yes', 'true'].includes((value ?? '').trim().toLowerCase());
}

/** The hub settings of an environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE). */
export function hubSettingsFrom(environment: Environment): HubSettings {
  return {
    endpoint: (environment.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: environment.HF_TOKEN?.trim() || null,
    offline: flagIsOn(environment.HF_HUB_OFFLINE),
  };
}

/** The cache folder of an environment: HF_HUB_CACHE, else HF_HOME/hub, else `home`/.cache/huggingface/hub. */
export function hubCacheFolderFrom(environment: Environment, home: string): string {
  if (environment.HF_HUB_CACHE?.trim()) return environment.HF_HUB_CACHE.trim();
  if (environment.HF_HOME?.trim()) return `${environment.HF_HOME.trim().replace(/\/+$/, '')}/hub`;
  return `${home.replace(/\/+$/, '')}/.cache/huggingface/hub`;
}
