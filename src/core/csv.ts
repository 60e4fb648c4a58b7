// The one CSV module (RFC 4180), over csv-parse and csv-stringify: manifests, split files, pairs files and
// the experiment table all read and write CSV through here.
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

/**
 * Rows of a CSV text as strings: quoted fields, "" escapes, embedded line breaks, a leading BOM dropped, blank
 * lines skipped. Rows may differ in length (callers name the line that does). A malformed text (an unclosed
 * quote) throws an Error that starts with `file`.
 */
export function parseCsv(text: string, file = 'CSV'): string[][] {
  try {
    const rows: string[][] = parse(text, {
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
  return stringify(rows as string[][], {
    record_delimiter: opts.eol === '\r\n' ? 'windows' : 'unix',
    // Any line break inside a field is quoted, not only the chosen record delimiter.
    quoted_match: /[\r\n]/,
  });
}
