import { gpuTests } from '../../tools/config/test-config';

export default gpuTests();
