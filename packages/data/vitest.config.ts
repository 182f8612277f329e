import { cpuTests } from '../../tools/config/test-config.ts';

export default cpuTests(60_000);
