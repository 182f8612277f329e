import type { DeviceInfo } from '@webtune/tensors';
import { h } from './dom.js';

/**
 * The header's notices: why models cannot run in this tab (no WebGPU), and that a software
 * adapter works but slowly. Both point to the Remote tab, where a server's GPU trains.
 */
export function noWebGpuNotice(reason: string, openRemote: () => void): (HTMLElement | string)[] {
  return [
    h('strong', {}, 'Models cannot run in this tab: '),
    `${reason.replace(/\.$/, '')}. `,
    'Use Chrome or Edge 113 or later (or another browser with WebGPU on), over https or on localhost, or ',
    remoteButton('train on a server from the Remote tab', openRemote),
    '.',
  ];
}

/** A note for a software adapter (SwiftShader, lavapipe, WARP); null for a real GPU. */
export function softwareAdapterNotice(device: DeviceInfo, openRemote: () => void): HTMLElement | null {
  if (device.adapterClass !== 'software') return null;
  const name =
    [device.vendor, device.architecture, device.description].filter(Boolean).join(' ') || 'unknown';
  return h(
    'div',
    { class: 'banner banner-info', role: 'note' },
    h('strong', {}, 'This GPU is a software renderer '),
    `(${name}): everything works, but training will be slow, so keep to tiny models such as stories260K, or `,
    remoteButton('train on a server from the Remote tab', openRemote),
    '.',
  );
}

function remoteButton(label: string, openRemote: () => void): HTMLButtonElement {
  return h('button', { type: 'button', class: 'link-button', onclick: openRemote }, label);
}
