export { type CloseOptions, expectClose, maxRelativeError } from './close.js';
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
