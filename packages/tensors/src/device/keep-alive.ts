/**
 * A pending mapAsync or onSubmittedWorkDone does not keep Node's event loop alive; without a
 * timer, a script can exit silently in the middle of a wait.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}
