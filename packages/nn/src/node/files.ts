import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileReader, openFileReader } from '@webtune/safetensors/node';
import type { ModelFileSource } from '../loading/pretrained.js';
import type { ModelFileSink } from '../loading/save.js';

/** The files of a model folder on disk. Safetensors files are opened for random access. */
export function directorySource(directory: string): ModelFileSource {
  const opened: FileReader[] = [];
  const path = (name: string) => join(directory, name);
  return {
    location: directory,
    async exists(name) {
      try {
        return (await stat(path(name))).isFile();
      } catch {
        return false;
      }
    },
    readText: (name) => readFile(path(name), 'utf8'),
    readBytes: async (name) => new Uint8Array(await readFile(path(name))),
    async open(name) {
      const reader = await openFileReader(path(name));
      opened.push(reader);
      return reader;
    },
    async close() {
      await Promise.all(opened.splice(0).map((reader) => reader.close()));
    },
  };
}

/** Writes saved files into a directory (created if needed). */
export function directorySink(directory: string): ModelFileSink {
  let made = false;
  return {
    async writeFile(name, contents) {
      if (!made) {
        await mkdir(directory, { recursive: true });
        made = true;
      }
      await writeFile(join(directory, name), contents);
    },
  };
}
