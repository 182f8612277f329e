import { cpuTests } from '../../tools/config/test-config.ts';

export default cpuTests();
