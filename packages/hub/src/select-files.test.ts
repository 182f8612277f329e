import { describe, expect, it } from 'vitest';
import { hubCacheFolderFrom, hubSettingsFrom } from './hub-settings.js';
import { repoFolderName, resolveUrl, revisionInfoUrl } from './hub-urls.js';
import { selectDatasetFiles, selectModelFiles } from './select-files.js';

const FILES = [
  'README.md',
  '.gitattributes',
  'data/train-00000-of-00002.parquet',
  'data/train-00001-of-00002.parquet',
  'data/validation-00000-of-00001.parquet',
  'en/train.jsonl',
  'en/test.jsonl',
  'zh/train.jsonl',
  'mixed/part.csv',
];

describe('which files a hub dataset or model needs', () => {
  it('picks a split, a subset folder and a folder as the datasets library names them', () => {
    expect(selectDatasetFiles(FILES, { folder: 'data' })).toEqual([
      'data/train-00000-of-00002.parquet',
      'data/train-00001-of-00002.parquet',
    ]);
    expect(selectDatasetFiles(FILES, { folder: 'data', split: 'validation' })).toEqual([
      'data/validation-00000-of-00001.parquet',
    ]);
    expect(selectDatasetFiles(FILES, { subset: 'en', split: 'test' })).toEqual(['en/test.jsonl']);
    expect(selectDatasetFiles(FILES, { subset: 'zh' })).toEqual(['zh/train.jsonl']);
    // No file names a split: all of them are train.
    expect(selectDatasetFiles(['a.jsonl', 'b.jsonl'], {})).toEqual(['a.jsonl', 'b.jsonl']);
    expect(() => selectDatasetFiles(FILES, { subset: 'fr' })).toThrow(/no data files for subset "fr"/);
    expect(() => selectDatasetFiles(FILES, { folder: 'nope' })).toThrow(/under folder "nope"/);
    expect(() => selectDatasetFiles(['a.jsonl'], { split: 'test' })).toThrow(/split "test"/);
  });

  it('picks config, tokenizer and safetensors weights of a model, shards by the index', () => {
    expect(
      selectModelFiles([
        'config.json',
        'model-00001-of-00002.safetensors',
        'model-00002-of-00002.safetensors',
        'model.safetensors.index.json',
        'tokenizer.json',
        'pytorch_model.bin',
        'onnx/model.onnx',
      ]),
    ).toEqual([
      'config.json',
      'tokenizer.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(() => selectModelFiles(['config.json', 'pytorch_model.bin'], 'model a/b')).toThrow(
      /a\/b has neither model.safetensors/,
    );
  });

  it("reads huggingface_hub's environment variables and URL layout", () => {
    expect(hubSettingsFrom({})).toEqual({ endpoint: 'https://huggingface.co', token: null, offline: false });
    expect(
      hubSettingsFrom({ HF_ENDPOINT: 'https://hf-mirror.com/', HF_TOKEN: 't', HF_HUB_OFFLINE: '1' }),
    ).toEqual({
      endpoint: 'https://hf-mirror.com',
      token: 't',
      offline: true,
    });
    expect(hubCacheFolderFrom({}, '/home/u')).toBe('/home/u/.cache/huggingface/hub');
    expect(hubCacheFolderFrom({ HF_HOME: '/data/hf' }, '/home/u')).toBe('/data/hf/hub');
    expect(hubCacheFolderFrom({ HF_HOME: '/data/hf', HF_HUB_CACHE: '/cache' }, '/home/u')).toBe('/cache');
    expect(repoFolderName('dataset', 'llamafactory/alpaca_en')).toBe('datasets--llamafactory--alpaca_en');
    expect(resolveUrl('https://h', 'dataset', 'o/n', 'main', 'data/a b.parquet')).toBe(
      'https://h/datasets/o/n/resolve/main/data/a%20b.parquet',
    );
    expect(resolveUrl('https://h', 'model', 'o/n', 'v1.0', 'config.json')).toBe(
      'https://h/o/n/resolve/v1.0/config.json',
    );
    expect(revisionInfoUrl('https://h', 'model', 'o/n', 'main')).toBe(
      'https://h/api/models/o/n/revision/main?blobs=true',
    );
  });
});
