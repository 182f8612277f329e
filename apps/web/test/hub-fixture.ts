/* A fixture model folder served in the hub's URL layout (its API and resolve/), for the browser checks. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type HubServer, startHubServer } from '@webtune/hub/testing';

/** Serves every file of `folder` as the model `repo` (weights as LFS files, as the hub lists them). */
export function serveModelAsHub(repo: string, folder: string): Promise<HubServer> {
  const files: Record<string, Uint8Array> = {};
  for (const name of readdirSync(folder)) files[name] = new Uint8Array(readFileSync(join(folder, name)));
  return startHubServer({
    [repo]: { type: 'model', files, lfs: Object.keys(files).filter((name) => name.endsWith('.safetensors')) },
  });
}
