/** The fixtures the repository carries: `fixtures/` at its root (see fixtures/PROVENANCE.md). */
export function repositoryFixturesRoot(): string;
/** Larger optional material: $WEBTUNE_FIXTURES, else ../shared/fixtures beside the repository. */
export function fixturesRoot(): string;
/** The repository's copy of a fixture (inflated when stored as `.gz`), else the optional folder's path. */
export function fixturePath(...parts: string[]): string;
/** The text of a fixture file, read through `fixturePath`. */
export function readFixture(...parts: string[]): string;
/** Whether the repository carries these fixtures; skips (false) or, under WEBTUNE_REQUIRE_FIXTURES=1, throws. */
export function requireFixtures(...relativePaths: string[]): boolean;
/** Whether optional material is present under `fixturesRoot()`; skips with the reason when not, always. */
export function optionalFixtures(...relativePaths: string[]): boolean;
/** For benchmarks: the optional folder's whole copy when present, else the repository's through `fixturePath`. */
export function fullFixturePath(...parts: string[]): string;
