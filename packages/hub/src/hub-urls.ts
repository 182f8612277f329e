/** The hub's addresses and the cache's folder names for a repository. */
import { HubError } from './hub-error.js';

/** Kind of repository: models live at /{repo}, datasets at /datasets/{repo}. */
export type RepoType = 'model' | 'dataset';

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** Throws a HubError unless `repo` looks like a hub id (`name` or `owner/name`). */
export function checkRepoId(repo: string): void {
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new HubError(`"${repo}" is not a hub repository id (owner/name)`);
  }
}

/** The cache folder of a repository, as huggingface_hub names it: `datasets--owner--name`. */
export function repoFolderName(type: RepoType, repo: string): string {
  checkRepoId(repo);
  return `${type}s--${repo.replaceAll('/', '--')}`;
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The API address that describes a revision and its files (with their blob ids and sizes). */
export function revisionInfoUrl(endpoint: string, type: RepoType, repo: string, revision: string): string {
  checkRepoId(repo);
  return `${endpoint}/api/${type}s/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

/** The address of a file at a revision: `/{repo}/resolve/...` for models, `/datasets/{repo}/resolve/...`. */
export function resolveUrl(
  endpoint: string,
  type: RepoType,
  repo: string,
  revision: string,
  path: string,
): string {
  checkRepoId(repo);
  const prefix = type === 'dataset' ? '/datasets' : '';
  return `${endpoint}${prefix}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
}

/** Whether a revision is a full commit hash (40 hex digits): it needs no refs entry. */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** Throws a HubError for a file path that could leave its snapshot folder. */
export function checkRepoPath(path: string): void {
  const parts = path.split('/');
  if (path.startsWith('/') || parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw new HubError(`the hub listed a file with an unsafe path: ${JSON.stringify(path)}`);
  }
}
