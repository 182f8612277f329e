import { cpuTests } from '../../tools/config/test-config';

export default cpuTests(60_000);
