import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

/** The package as users import it (`klaviyo-etl` → the built dist/ through package.json `exports`), as in the README. */
describe('library API through the package entry point', () => {
  it('validatePipelineFiles, run with an embedded emulator, pipelineStatus', async () => {
    const entry = 'klaviyo-etl'; // resolved at run time (the built package), not by the type checker
    const lib = (await import(entry)) as typeof import('../../src/index.js');
    const pipeline = path.join(ROOT, 'pipelines/examples/customers-csv.yaml');
    expect(await lib.validatePipelineFiles([pipeline])).toEqual([]);
    const stateDir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-lib-'));
    try {
      const report = await lib.run({ pipelineFile: pipeline, emulator: true, stateDir });
      expect(report.status).toBe('succeeded');
      expect(report.rows.loaded).toBe(report.rows.read);
      expect((report.emulator?.state as { profiles: number }).profiles).toBe(report.rows.read);
      const status = await lib.pipelineStatus(pipeline, { stateDir });
      // with an explicit state dir, even an embedded-emulator run keeps its checkpoint: the next run is incremental
      expect(status.state).toBe('succeeded');
      expect(status.next).toBe('incremental');
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
