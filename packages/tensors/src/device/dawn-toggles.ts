/**
 * Dawn toggles webtune turns on in Node, merged into the caller's `dawnOptions`.
 *
 * `disable_lazy_clear_for_mapped_at_creation_buffer`: Dawn uploads every `queue.writeBuffer`
 * through 4 MiB staging ring buffers that it creates mapped, lazily, when the current ring is
 * full, and it zero-fills each new one. On lavapipe that zero-fill touches 1,024 fresh shared-memory
 * pages (page faults) inside whichever small `writeBuffer` happens to need the new ring: one
 * 4-byte write of the second prefill of a process took 12 to 32 ms (measured with perf: memset
 * in page faults after lavapipe grows its memfd). Nothing in webtune creates a buffer mapped at
 * creation, and Dawn's own staging buffers are written before they are read, so the zero-fill
 * buys nothing. A caller that needs the spec's zeroed mapped-at-creation buffers passes
 * `disable-dawn-features=disable_lazy_clear_for_mapped_at_creation_buffer`.
 */
export const DEFAULT_DAWN_TOGGLES = ['disable_lazy_clear_for_mapped_at_creation_buffer'] as const;

const ENABLE = 'enable-dawn-features=';
const DISABLE = 'disable-dawn-features=';

/** The caller's Dawn options with webtune's toggles enabled (unless the caller disables them). */
export function withDefaultDawnToggles(options: readonly string[] = []): string[] {
  const listed = (prefix: string) =>
    options
      .filter((option) => option.startsWith(prefix))
      .flatMap((option) => option.slice(prefix.length).split(','))
      .map((name) => name.trim());
  const disabled = new Set(listed(DISABLE));
  const enabled = new Set(listed(ENABLE));
  const missing = DEFAULT_DAWN_TOGGLES.filter((name) => !disabled.has(name) && !enabled.has(name));
  if (missing.length === 0) return [...options];
  const index = options.findIndex((option) => option.startsWith(ENABLE));
  if (index < 0) return [...options, `${ENABLE}${missing.join(',')}`];
  const merged = [...options];
  merged[index] = `${merged[index]},${missing.join(',')}`;
  return merged;
}
