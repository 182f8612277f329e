import { libraryBuild } from '../../tools/config/library-build';

export default libraryBuild(['src/index.ts', 'src/node.ts'], ['webgpu']);
