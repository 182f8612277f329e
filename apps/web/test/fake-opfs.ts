/*
 * An in-memory origin-private file system for Node tests of the OPFS storage: directories, files,
 * writable streams that commit on close (as the browser's swap file does), and NotFoundError as a
 * DOMException. Every call takes a macrotask, as real file I/O does, so concurrent operations
 * interleave the way they can in a browser.
 */

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function notFound(name: string): DOMException {
  return new DOMException(`A requested file or directory could not be found: ${name}`, 'NotFoundError');
}

class FakeFile {
  kind = 'file' as const;
  data = new Uint8Array(0);
  constructor(readonly name: string) {}

  async getFile(): Promise<Blob> {
    await tick();
    return new Blob([this.data.slice()]);
  }

  async createWritable(options: { keepExistingData?: boolean } = {}) {
    await tick();
    let swap = options.keepExistingData ? this.data.slice() : new Uint8Array(0);
    let position = 0;
    return {
      seek: async (offset: number) => {
        await tick();
        position = offset;
      },
      write: async (chunk: Uint8Array | string) => {
        await tick();
        const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
        const grown = new Uint8Array(Math.max(swap.length, position + bytes.length));
        grown.set(swap);
        grown.set(bytes, position);
        swap = grown;
        position += bytes.length;
      },
      close: async () => {
        await tick();
        this.data = swap;
      },
    };
  }
}

class FakeDirectory {
  kind = 'directory' as const;
  readonly children = new Map<string, FakeDirectory | FakeFile>();
  constructor(readonly name: string) {}

  async getDirectoryHandle(name: string, options: { create?: boolean } = {}): Promise<FakeDirectory> {
    await tick();
    let child = this.children.get(name);
    if (!child && options.create) {
      child = new FakeDirectory(name);
      this.children.set(name, child);
    }
    if (!child) throw notFound(name);
    if (child.kind !== 'directory') throw new DOMException(`${name} is a file`, 'TypeMismatchError');
    return child;
  }

  async getFileHandle(name: string, options: { create?: boolean } = {}): Promise<FakeFile> {
    await tick();
    let child = this.children.get(name);
    if (!child && options.create) {
      child = new FakeFile(name);
      this.children.set(name, child);
    }
    if (!child) throw notFound(name);
    if (child.kind !== 'file') throw new DOMException(`${name} is a folder`, 'TypeMismatchError');
    return child;
  }

  async removeEntry(name: string, options: { recursive?: boolean } = {}): Promise<void> {
    await tick();
    const child = this.children.get(name);
    if (!child) throw notFound(name);
    if (child.kind === 'directory' && child.children.size > 0 && !options.recursive) {
      throw new DOMException(`${name} is not empty`, 'InvalidModificationError');
    }
    this.children.delete(name);
  }

  async *entries(): AsyncIterable<[string, FakeDirectory | FakeFile]> {
    await tick();
    for (const entry of [...this.children]) yield entry;
  }
}

/** A fresh file system; install it with `vi.stubGlobal('navigator', fakeNavigator(root))`. */
export function fakeOpfs(): FakeDirectory {
  return new FakeDirectory('');
}

export function fakeNavigator(root: FakeDirectory) {
  return { storage: { getDirectory: async () => root } };
}

/** The names of the files under a folder, recursively, as `a/b/c`. */
export function fileNames(folder: FakeDirectory, prefix = ''): string[] {
  const names: string[] = [];
  for (const [name, child] of folder.children) {
    if (child.kind === 'file') names.push(prefix + name);
    else names.push(...fileNames(child, `${prefix}${name}/`));
  }
  return names.sort();
}
