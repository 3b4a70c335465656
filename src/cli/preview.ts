import type { RequestPreview } from '../destinations/types.js';

/** Collects the first `limit` requests a dry run would send (`run --dry-run --show N`), and counts the rest. */
export class RequestPreviews {
  readonly shown: RequestPreview[] = [];
  total = 0;

  constructor(readonly limit: number) {}

  readonly add = (request: RequestPreview): void => {
    this.total++;
    if (this.shown.length < this.limit) this.shown.push(request);
  };

  /** The requests as JSON (the `preview` member of `run --json`): bodies parsed. */
  toJSON(): Array<Omit<RequestPreview, 'body'> & { body: unknown }> {
    return this.shown.map((r) => ({ ...r, body: parse(r.body) }));
  }

  /** The requests for people: request line, headers, and the body's JSON indented (its content exactly as sent). */
  format(): string {
    const blocks = this.shown.map((r, i) => {
      const headers = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`);
      const body = parse(r.body);
      return [`── request ${i + 1} of ${this.total} ──`, `${r.method} ${r.url}`, ...headers, '', body === undefined ? r.body : JSON.stringify(body, null, 2)].join('\n');
    });
    if (this.total === 0) blocks.push('── no request: a real run would send nothing ──');
    else if (this.total > this.shown.length) blocks.push(`── ${this.total - this.shown.length} more request(s) not shown ──`);
    return blocks.join('\n\n');
  }
}

function parse(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}
