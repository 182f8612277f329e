/** A hub request that failed, or a file that is not where the hub said: names the repository, file and status. */
export class HubError extends Error {
  constructor(
    message: string,
    /** HTTP status when the hub answered (401, 404, ...), else null. */
    readonly status: number | null = null,
    /** The address asked, when there was one. */
    readonly url: string | null = null,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

/** A clear message for a failed hub response: authentication (401/403) and absence (404) get advice. */
export function responseError(what: string, url: string, status: number, statusText: string): HubError {
  if (status === 401 || status === 403) {
    return new HubError(
      `${what}: the hub answered ${status} ${statusText} (a private or gated repository needs an access token: set HF_TOKEN, and accept the repository's terms on the hub)`,
      status,
      url,
    );
  }
  if (status === 404) {
    return new HubError(
      `${what}: not found on the hub (404; check the repository id, revision and file)`,
      status,
      url,
    );
  }
  return new HubError(`${what}: the hub answered ${status} ${statusText}`, status, url);
}
