/**
 * Test helpers of @webtune/hub (Node only): a local HTTP server in the hub's URL layout, for the
 * tests of packages and apps that download from a hub. Not for production code.
 */
export { blobIdOf, type HubServer, type ServedRepo, startHubServer } from './testing/hub-server.js';
