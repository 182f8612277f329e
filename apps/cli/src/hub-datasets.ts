/**
 * Datasets from the Hugging Face hub (dataset_info.json's `hf_hub_url` with `subset`, `split`,
 * `folder`): downloaded into the Hugging Face cache with @webtune/hub and read from there (parquet
 * through a file-backed Blob, a row group at a time; the rest streamed).
 */
import { openAsBlob } from 'node:fs';
import type { ByteSource, DatasetAttributes } from '@webtune/data';
import { downloadDataset } from '@webtune/hub/node';

/** The `hubDataset` hook of @webtune/data's loader for this machine. */
export async function downloadHubDataset(
  attributes: DatasetAttributes,
): Promise<{ name: string; source: ByteSource }[]> {
  const download = await downloadDataset(attributes.location, {
    subset: attributes.subset,
    split: attributes.split,
    folder: attributes.folder,
  });
  return Promise.all(
    download.files.map(async (file, index) => {
      const path = download.paths[index];
      // A file-backed Blob: read in ranges (parquet) or as a stream, and again on each pass
      // (streaming: true reads a dataset once per pass and again on a resume).
      return { name: `${attributes.location}/${file}`, source: await openAsBlob(path) };
    }),
  );
}
