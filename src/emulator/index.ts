/**
 * The Klaviyo emulator: a real local HTTP server true to Klaviyo's REST contract (auth, revision, JSON:API
 * errors, per-account fixed-window rate limits, profiles, bulk import jobs, events, metrics, consent, lists,
 * segments, and the catalog of campaigns, flows and templates), with seeded fault
 * injection and `/_emulator/*` state endpoints. See docs/emulator.md.
 */
import { EmulatorServer, type EmulatorHandle, type EmulatorOptions } from './server.js';

export type { EmulatorHandle, EmulatorOptions, EmulatorStateSummary } from './server.js';
export { parseFaults } from './faults.js';
export type { RouteModule } from './router.js';
export { parseRealism } from './realism.js';
export { parseGenerate } from './generate.js';
export { parseLatency, type LatencyOption } from './latency.js';

/** Start an emulator and resolve once it listens. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  const server = new EmulatorServer(options);
  return server.listen();
}
