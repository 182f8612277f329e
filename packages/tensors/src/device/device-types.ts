import type { BufferRange } from '../tensor/storage.js';
import type { AdapterClass } from './adapter-class.js';
import type { UniformField, UniformValue } from './uniforms.js';

/** What the device is and what it offers, as reported by the adapter. */
export interface DeviceInfo {
  backend: 'dawn-node' | 'browser';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  adapterClass: AdapterClass;
  features: string[];
  limits: Record<string, number>;
}

/** Something a kernel can bind: a tensor (its whole storage) or a buffer range. */
export interface Bindable {
  binding(what?: string): BufferRange;
}

/** One compute dispatch: the kernel's pipeline key, its source, bindings and parameters. */
export interface KernelLaunch {
  /** Kernel name (a constant of KERNELS) plus any variant that changes the generated WGSL. */
  key: string;
  /** Builds the WGSL; called once per key. */
  source: () => string;
  /** Storage bindings in the order of the shader's @binding indices: tensors or buffer ranges. */
  bindings: readonly (BufferRange | Bindable)[];
  /** Parameters, bound as a uniform after the storage bindings. */
  uniforms?: { fields: readonly UniformField[]; values: Record<string, UniformValue> };
  /** Workgroup counts; build them with `grid()` to stay under maxComputeWorkgroupsPerDimension. */
  workgroups: readonly [number, number?, number?];
}

export interface MemoryStats {
  /** Bytes held by live tensors. */
  liveBytes: number;
  /** Largest liveBytes seen since the device was created or resetPeak() was called. */
  peakBytes: number;
  /** Bytes in freed buffers kept for reuse. */
  pooledBytes: number;
  /** Every byte this device currently holds in GPU buffers. */
  allocatedBytes: number;
  liveTensors: number;
}

export interface DeviceStats {
  dispatches: number;
  submits: number;
  readbacks: number;
  /** Compute pipelines compiled (lavapipe compiles the shader here: tens of ms each). */
  pipelines: number;
  /** Bind groups created (the cache missed: new buffers or a buffer handed to a different tensor). */
  bindGroups: number;
  /** GPU buffers created by the pool (it had no free one of the size class; the rest are reused). */
  buffers: number;
}
