/**
 * The field splitter of the CSV reader (src/extract/csv.ts): turns the text of one record into its fields.
 *
 * The reader finds record boundaries on the bytes and decodes each record once. A record without any quote
 * character is split with `String#split` ({@link CsvSplitter.plain}); a record with a quote character goes through
 * the state machine of {@link CsvSplitter.feed}, one physical line at a time (a quoted field may hold line breaks),
 * with csv-parse's grammar (`relax_quotes: false`, no trimming):
 * - a quote opens a quoted field only as the first character of a field; anywhere else in an unquoted field it is
 *   an error (`Invalid Opening Quote`);
 * - inside a quoted field, the escape character followed by any character stands for that character (with the
 *   default escape, the quote itself, `""` is one `"`); a lone quote closes the field, and must then be followed by
 *   a delimiter or the end of the record (`Invalid Closing Quote` otherwise);
 * - outside quoted fields the escape character is an ordinary character.
 */

/** {@link CsvSplitter.feed}: the record is complete (its fields are in `fields`). */
export const RECORD_DONE = 0;
/** {@link CsvSplitter.feed}: the line ended inside a quoted field; the record goes on with the next line. */
export const RECORD_MORE = 1;
/** {@link CsvSplitter.feed}: a syntax error; the message is in `error`. */
export const RECORD_ERROR = 2;
export type FeedResult = typeof RECORD_DONE | typeof RECORD_MORE | typeof RECORD_ERROR;

/** The state of a record read by {@link CsvSplitter.feed}, kept between its physical lines. */
export class QuotedRecord {
  /** The fields read so far. */
  readonly fields: string[] = [];
  /** The text read so far of the quoted field the previous line ended in. */
  cur = '';
  /** The previous line ended inside a quoted field. */
  inQuotes = false;
  /** The message of the syntax error, after {@link RECORD_ERROR}. */
  error = '';
}

/** The CSV syntax characters. */
export interface CsvSyntax {
  /** Field delimiter (one or more characters). */
  delimiter: string;
  /** Quote character (one character). */
  quote: string;
  /** Escape character inside quoted fields (one character; the quote character by default). */
  escape: string;
}

export class CsvSplitter {
  readonly #delimiter: string;
  readonly #quote: string;
  readonly #quoteCode: number;
  readonly #escape: string;
  readonly #escapeIsQuote: boolean;

  constructor(syntax: CsvSyntax) {
    this.#delimiter = syntax.delimiter;
    this.#quote = syntax.quote;
    this.#quoteCode = syntax.quote.charCodeAt(0);
    this.#escape = syntax.escape;
    this.#escapeIsQuote = syntax.escape === syntax.quote;
  }

  /** The fields of a record that holds no quote character. */
  plain(text: string): string[] {
    return text.split(this.#delimiter);
  }

  /**
   * Read one physical line of a record: `text` is the line without its line terminator, `term` the terminator
   * (`"\n"`, `"\r\n"`, `"\r"`; `""` at the end of the input). The terminator ends the record unless the line
   * ends inside a quoted field, where it is part of the field's text.
   */
  feed(rec: QuotedRecord, text: string, term: string): FeedResult {
    const d = this.#delimiter;
    const dl = d.length;
    const q = this.#quote;
    const qc = this.#quoteCode;
    const fields = rec.fields;
    const end = text.length;
    let i = 0;
    let cur = rec.cur;
    let inQuotes = rec.inQuotes;
    for (;;) {
      if (!inQuotes) {
        // At the start of a field.
        if (i < end && text.charCodeAt(i) === qc) {
          inQuotes = true;
          cur = '';
          i++;
          continue;
        }
        let fe = text.indexOf(d, i);
        if (fe === -1) fe = end;
        const qi = text.indexOf(q, i);
        if (qi !== -1 && qi < fe) {
          rec.error = `Invalid Opening Quote: a quote is found on field ${fields.length}, value is ${JSON.stringify(text.slice(i, qi))}`;
          return RECORD_ERROR;
        }
        fields.push(text.slice(i, fe));
        if (fe === end) return RECORD_DONE;
        i = fe + dl;
        continue;
      }
      // Inside a quoted field.
      const qi = text.indexOf(q, i);
      if (!this.#escapeIsQuote) {
        const ei = text.indexOf(this.#escape, i);
        if (ei !== -1 && (qi === -1 || ei < qi)) {
          if (ei + 1 < end) {
            cur += text.slice(i, ei) + text[ei + 1];
            i = ei + 2;
            continue;
          }
          if (term !== '') {
            // The escape character escapes the line break.
            rec.cur = cur + text.slice(i, ei) + term;
            rec.inQuotes = true;
            return RECORD_MORE;
          }
          // At the end of the input the escape character is an ordinary character (below: no closing quote).
        }
      }
      if (qi === -1) {
        rec.cur = cur + text.slice(i) + term;
        rec.inQuotes = true;
        return RECORD_MORE;
      }
      if (this.#escapeIsQuote && qi + 1 < end && text.charCodeAt(qi + 1) === qc) {
        cur += text.slice(i, qi + 1);
        i = qi + 2;
        continue;
      }
      // A closing quote.
      cur += text.slice(i, qi);
      const next = qi + 1;
      if (next === end) {
        fields.push(cur);
        return RECORD_DONE;
      }
      if (text.startsWith(d, next)) {
        fields.push(cur);
        inQuotes = false;
        i = next + dl;
        continue;
      }
      rec.error = `Invalid Closing Quote: got ${JSON.stringify(text[next])} after the closing quote of field ${fields.length}, instead of a delimiter or the end of the record`;
      return RECORD_ERROR;
    }
  }
}
