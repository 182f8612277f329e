import { describe, expect, it } from 'vitest';
import { DEFAULT_DAWN_TOGGLES, withDefaultDawnToggles } from './dawn-toggles.js';

const TOGGLE = DEFAULT_DAWN_TOGGLES[0];

describe('withDefaultDawnToggles', () => {
  it('enables the default toggles when the caller passes nothing', () => {
    expect(withDefaultDawnToggles()).toEqual([`enable-dawn-features=${TOGGLE}`]);
    expect(withDefaultDawnToggles([])).toEqual([`enable-dawn-features=${TOGGLE}`]);
  });

  it("appends them to the caller's own enable list and keeps every other option", () => {
    const options = [
      'disable-dawn-features=timestamp_quantization',
      'enable-dawn-features=allow_unsafe_apis',
    ];
    expect(withDefaultDawnToggles(options)).toEqual([
      'disable-dawn-features=timestamp_quantization',
      `enable-dawn-features=allow_unsafe_apis,${TOGGLE}`,
    ]);
    // The caller's array is not changed.
    expect(options[1]).toBe('enable-dawn-features=allow_unsafe_apis');
  });

  it('leaves a toggle the caller already enables or explicitly disables alone', () => {
    const enabled = [`enable-dawn-features=allow_unsafe_apis,${TOGGLE}`];
    expect(withDefaultDawnToggles(enabled)).toEqual(enabled);
    const disabled = [`disable-dawn-features=${TOGGLE}`];
    expect(withDefaultDawnToggles(disabled)).toEqual(disabled);
  });
});
