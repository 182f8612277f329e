/** Raised when no WebGPU adapter or device can be obtained; the message says how to fix it. */
export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

/** Raised on any use of a device after the GPU lost it (driver reset, out of memory, destroy()). */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(`the WebGPU device was lost (${reason}): ${detail}. Create a new device with createDevice().`);
  }
}

/** A validation or out-of-memory error reported by the WebGPU implementation for a kernel launch. */
export class GpuError extends Error {
  override name = 'GpuError';
}

/** A tensor argument that does not fit the op (shape, dtype, device, disposed). */
export class TensorError extends Error {
  override name = 'TensorError';
}

export function noAdapterAdvice(platform: string): string {
  if (platform === 'linux') {
    return (
      "On Linux, WebGPU in Node.js runs through Vulkan: install a Vulkan driver. Without a GPU, Mesa's " +
      'software driver works: on Debian 12, mesa-vulkan-drivers from bookworm-backports (Mesa >= 24) plus ' +
      'libvulkan1; on Ubuntu 24.04+, `apt install mesa-vulkan-drivers libvulkan1`. Check with `vulkaninfo --summary`.'
    );
  }
  if (platform === 'browser') {
    return (
      'This browser exposes no navigator.gpu. Use a recent Chrome, Edge or Firefox with WebGPU enabled, ' +
      'served over https or localhost.'
    );
  }
  return 'Install or update the GPU driver (Metal on macOS, D3D12 or Vulkan on Windows).';
}

/** A `limits` request to createDevice that names an unknown limit or a value no device can hold. */
export class DeviceLimitsError extends Error {
  override name = 'DeviceLimitsError';
}
