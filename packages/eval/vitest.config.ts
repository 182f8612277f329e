import { gpuTests } from '../../tools/config/test-config.ts';

export default gpuTests();
