/** The typed list of destination components. Adding a destination is one file and one line here. */
import { csvDestination } from './csv.js';
import { klaviyoDestination } from './klaviyo.js';
import { ndjsonDestination } from './ndjson.js';
import { postgresDestination } from './postgres.js';
import { s3Destination } from './s3.js';

/** Registered destinations, in the order the schema lists them. */
export const DESTINATIONS = [klaviyoDestination, csvDestination, ndjsonDestination, s3Destination, postgresDestination] as const;
