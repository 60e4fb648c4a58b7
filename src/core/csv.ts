// The one CSV module (RFC 4180), over csv-parse and csv-stringify: manifests, split files, pairs files and
// the experiment table all read and write CSV through here.
import { createRequire } from 'node:module';

// Loaded on first use (their one-file CommonJS builds): every CLI command imports this module through the table
// formatter, and the two ESM builds cost 17 module loads on each start, CSV or not.
const require = createRequire(import.meta.url);
let parseLib: typeof import('csv-parse/sync') | undefined;
let stringifyLib: typeof import('csv-stringify/sync') | undefined;

/**
 * Rows of a CSV text as strings: quoted fields, "" escapes, embedded line breaks, a leading BOM dropped, blank
 * lines skipped. Rows may differ in length (callers name the line that does). A malformed text (an unclosed
 * quote) throws an Error that starts with `file`.
 */
export function parseCsv(text: string, file = 'CSV'): string[][] {
  try {
    parseLib ??= require('csv-parse/sync') as typeof import('csv-parse/sync');
    const rows: string[][] = parseLib.parse(text, {
      bom: true,
      // Mixed line ends (a CRLF header, LF rows) are common in hand-edited files.
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
    });
    return rows;
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** CSV text of rows; fields holding a comma, a quote or a line break are quoted. */
export function formatCsv(rows: ReadonlyArray<ReadonlyArray<string>>, opts: { eol?: '\n' | '\r\n' } = {}): string {
  stringifyLib ??= require('csv-stringify/sync') as typeof import('csv-stringify/sync');
  return stringifyLib.stringify(rows as string[][], {
    record_delimiter: opts.eol === '\r\n' ? 'windows' : 'unix',
    // Any line break inside a field is quoted, not only the chosen record delimiter.
    quoted_match: /[\r\n]/,
  });
}
