import { TOKENIZER_FILES } from '@webtune/nn';

/** Called while files download: bytes so far of the current file and its size (0 when unknown). */
export type DownloadProgress = (fileName: string, loaded: number, total: number) => void;

/**
 * Downloads a Hugging Face model folder served over HTTP (a Hub `resolve/main/` URL, or any static
 * server) into Blobs, by file name (give them to memoryFileSource). The weights are looked for as
 * model.safetensors first, then as shards named by model.safetensors.index.json, so a
 * single-file model costs no request for an index it does not have.
 */
export async function downloadModelFolder(
  url: string,
  onProgress?: DownloadProgress,
  fetchOne: typeof fetchFile = fetchFile,
): Promise<Map<string, Blob>> {
  const base = url.endsWith('/') ? url : `${url}/`;
  const files = new Map<string, Blob>();
  const config = await fetchOne(base, 'config.json', onProgress);
  if (!config) throw new Error(`${base}config.json was not found: not a Hugging Face model folder`);
  files.set('config.json', config);
  for (const name of ['generation_config.json', ...TOKENIZER_FILES]) {
    const blob = await fetchOne(base, name, onProgress);
    if (blob) files.set(name, blob);
  }
  const single = await fetchOne(base, 'model.safetensors', onProgress);
  if (single) files.set('model.safetensors', single);
  else {
    const index = await fetchOne(base, 'model.safetensors.index.json', onProgress);
    if (!index) throw new Error(`${base} has neither model.safetensors nor model.safetensors.index.json`);
    files.set('model.safetensors.index.json', index);
    const weightMap =
      (JSON.parse(await index.text()) as { weight_map?: Record<string, string> }).weight_map ?? {};
    for (const shard of [...new Set(Object.values(weightMap))].sort()) {
      const blob = await fetchOne(base, shard, onProgress);
      if (!blob) throw new Error(`${base}${shard}, named in model.safetensors.index.json, was not found`);
      files.set(shard, blob);
    }
  }
  return files;
}

/** Downloads one file of the folder with progress; null when the server has no such file. */
export async function fetchFile(
  base: string,
  name: string,
  onProgress?: DownloadProgress,
): Promise<Blob | null> {
  const response = await fetch(base + name);
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET ${base}${name}: HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  if (!response.body) return response.blob();
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress?.(name, loaded, total);
  }
  return new Blob(parts);
}
