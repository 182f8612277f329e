import { libraryBuild } from '../../tools/config/library-build.ts';

export default libraryBuild(['src/index.ts', 'src/node.ts', 'src/testing.ts']);
