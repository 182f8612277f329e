export { type CloseOptions, expectClose, maxRelativeError } from './close.js';
export { f16Usable, requireF16, type SkippableContext } from './features.js';
export {
  fixturePath,
  fixturesRoot,
  fullFixturePath,
  optionalFixtures,
  readFixture,
  repositoryFixturesRoot,
  requireFixtures,
} from './fixtures.js';
export { Rng } from './rng.js';
