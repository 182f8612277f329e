import { cpuTests } from '../../tools/config/test-config';

export default cpuTests();
