import { h } from './dom.js';

/** Files by their path relative to what was picked or dropped (`folder/name` for folders). */
export type PickedFiles = Record<string, File>;

/** The files of an `<input type="file">`, by relative path when a folder was picked. */
export function filesOfInput(input: HTMLInputElement): PickedFiles {
  const files: PickedFiles = {};
  for (const file of input.files ?? []) files[file.webkitRelativePath || file.name] = file;
  return files;
}

/** The files of a drop, walking dropped folders (their files keyed `folder/sub/name`). */
export async function filesOfDrop(transfer: DataTransfer): Promise<PickedFiles> {
  const files: PickedFiles = {};
  const entries = [...transfer.items]
    .map((item) => item.webkitGetAsEntry?.())
    .filter((entry): entry is FileSystemEntry => Boolean(entry));
  if (entries.length === 0) {
    for (const file of transfer.files) files[file.name] = file;
    return files;
  }
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) =>
        (entry as FileSystemFileEntry).file(resolve, reject),
      );
      files[prefix + entry.name] = file;
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
        reader.readEntries(resolve, reject),
      );
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) await walk(entry, '');
  return files;
}

/**
 * A drop zone that takes files or folders. Keyboard and screen-reader users use the file inputs
 * beside it; the zone itself is a labelled region.
 */
export function dropZone(label: string, onFiles: (files: PickedFiles) => void): HTMLElement {
  const zone = h('div', { class: 'drop-zone', role: 'region', 'aria-label': label }, label);
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', async (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    if (event.dataTransfer) onFiles(await filesOfDrop(event.dataTransfer));
  });
  return zone;
}

/** Files directly inside the single top folder of a pick (`stories/config.json` -> `config.json`). */
export function topLevelFiles(files: PickedFiles): Record<string, File> {
  const names = Object.keys(files);
  const folders = new Set(names.map((name) => (name.includes('/') ? name.split('/')[0] : '')));
  const strip = folders.size === 1 && !folders.has('') ? `${[...folders][0]}/` : '';
  const result: Record<string, File> = {};
  for (const [name, file] of Object.entries(files)) {
    const relative = name.slice(strip.length);
    if (!relative.includes('/')) result[relative] = file;
  }
  return result;
}
