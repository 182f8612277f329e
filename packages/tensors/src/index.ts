// Public API of @webtune/tensors. Listed deliberately: what is not here is internal.

export { type AdapterClass, classifyAdapter, type Tuning, tuningFor } from './device/adapter-class.js';
// Device
export { type CreateDeviceOptions, createDevice } from './device/create-device.js';
export {
  Device,
  type DeviceInfo,
  type DeviceStats,
  formatBytes,
  grid,
  type KernelLaunch,
  type MemoryStats,
} from './device/device.js';
export { DeviceLostError, GpuError, NoAdapterError, TensorError } from './device/errors.js';
export type { UniformField, UniformType, UniformValue } from './device/uniforms.js';
// Elementwise
export { type BinaryOp, binary } from './kernels/binary/binary.js';
// Kernel authoring
export { KERNELS, type KernelName } from './kernels/names.js';
export { type KernelSourceSpec, kernelSource, type StorageBinding, workgroupsFor } from './kernels/wgsl.js';
// Creation
export { arange, fromArray, full, ones, zeros } from './ops/creation.js';
export { add, div, eq, ge, gt, le, lt, maximum, minimum, mul, ne, pow, sub } from './ops/elementwise.js';
export {
  DTYPE_BYTES,
  type DType,
  f16BitsToF32,
  f32ToF16Bits,
  type HostArray,
  isFloat,
} from './tensor/dtype.js';
export { broadcastShapes, type Shape, sizeOf } from './tensor/shape.js';
// Tensors
export { type BufferRange, Tensor } from './tensor/tensor.js';
