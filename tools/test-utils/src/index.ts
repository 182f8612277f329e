export { type CloseOptions, expectClose, maxRelativeError } from './close.js';
export { fixturePath, fixturesRoot, requireFixtures } from './fixtures.js';
export { Rng } from './rng.js';
