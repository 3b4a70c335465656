import type { ArgumentsCamelCase, CommandModule } from 'yargs';
import { pipelineJsonSchemaText } from '../../config/json-schema.js';
import { ioOf } from '../io.js';

/** `klaviyo-etl schema`: print the JSON Schema of pipeline files (for editors). */
export const schemaCommand: CommandModule<object, object> = {
  command: 'schema',
  describe: 'Print the JSON Schema of pipeline files (for editor completion and validation)',
  handler: (args: ArgumentsCamelCase<object>) => {
    ioOf(args).stdout(pipelineJsonSchemaText());
  },
};
