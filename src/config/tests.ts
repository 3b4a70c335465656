import { z } from 'zod';

/*
 * `tests:` — mapping tests kept in the pipeline file (as Benthos config tests are): input rows and what the
 * transform must make of them. `klaviyo-etl test <pipeline>` runs them (src/pipeline-tests.ts); they never touch the
 * source, the destination or the checkpoint, and are not part of the pipeline's hash (editing a test never makes an
 * unfinished run refuse to resume).
 */

export const PipelineTest = z
  .strictObject({
    name: z.string().min(1).describe('What the test shows, e.g. `a refunded order is skipped`.'),
    rows: z
      .array(z.record(z.string(), z.unknown()))
      .min(1)
      .describe('Input rows, column → value, as the source gives them (for a CSV source every value is read as text).'),
    expect: z
      .strictObject({
        items: z
          .array(z.unknown())
          .optional()
          .describe(
            'What the transform makes of the rows, in order, compared exactly: a profile\'s attributes; an event\'s `{profile, event}`; a subscription\'s `{profile, listId, historicalImport, customSource}`; an export row. Not checked when absent.',
          ),
        rejects: z
          .array(
            z.strictObject({
              row: z.number().int().min(1).describe('1-based index of the rejected row in `rows`.'),
              code: z.string().min(1).describe('The reject code, e.g. `INVALID_EMAIL`.'),
              field: z.string().optional().describe('The field named by the reject (checked when given).'),
            }),
          )
          .optional()
          .describe('The rows rejected, in order. Not checked when absent.'),
        skipped: z.number().int().min(0).optional().describe('How many rows are skipped (`where:`, `when`). Not checked when absent.'),
      })
      .describe('What must come out; only the keys given are checked.'),
  })
  .describe('One mapping test.');

export const PipelineTests = z.array(PipelineTest).min(1).describe('Mapping tests run by `klaviyo-etl test <pipeline>`.');

export type PipelineTestConfig = z.output<typeof PipelineTest>;
