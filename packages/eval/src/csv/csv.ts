/**
 * A CSV reader for benchmark files: RFC 4180 quoting (`"` around a field, `""` for a quote inside
 * one), fields that span lines, `\n`, `\r\n` or `\r` endings, a UTF-8 byte-order mark, blank lines
 * skipped. Like Python's `csv` module, a quote in the middle of an unquoted field is kept as text,
 * and text after a closing quote is appended to the field. Each record keeps the line it starts on,
 * so a later check can name it.
 */
import { EvaluationError } from '../errors.js';

/** One record: its fields and the 1-based line it starts on (and ends on, for multi-line fields). */
export interface CsvRecord {
  fields: string[];
  line: number;
  endLine: number;
}

/**
 * Splits CSV text into records. Throws `EvaluationError` (with `file` and the line the quote opened on)
 * for a quoted field that never closes.
 */
export function parseCsv(text: string, file = '(csv)'): CsvRecord[] {
  const records: CsvRecord[] = [];
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = '';
  let recordLine = 1;
  let recordHasContent = false;

  const endField = () => {
    fields.push(field);
    field = '';
  };
  const endRecord = () => {
    endField();
    if (recordHasContent) records.push({ fields, line: recordLine, endLine: line });
    fields = [];
    recordHasContent = false;
  };
  const lineBreakLength = (index: number): number => {
    const character = text[index];
    if (character === '\n') return 1;
    if (character === '\r') return text[index + 1] === '\n' ? 2 : 1;
    return 0;
  };

  for (let index = start; index < text.length; ) {
    if (!recordHasContent && fields.length === 0 && field.length === 0) recordLine = line;
    const character = text[index];
    if (character === '"' && field.length === 0) {
      // A quoted field: read to the closing quote.
      const openLine = line;
      recordHasContent = true;
      index++;
      for (;;) {
        if (index >= text.length) {
          throw new EvaluationError(`a quoted field opened on line ${openLine} is never closed`, {
            file,
            line: openLine,
          });
        }
        const inner = text[index];
        if (inner === '"') {
          if (text[index + 1] === '"') {
            field += '"';
            index += 2;
            continue;
          }
          index++;
          break;
        }
        const breakLength = lineBreakLength(index);
        if (breakLength > 0) {
          field += '\n';
          line++;
          index += breakLength;
          continue;
        }
        field += inner;
        index++;
      }
      // Text after the closing quote, up to the separator, joins the field (as Python's csv does).
      while (index < text.length && text[index] !== ',' && lineBreakLength(index) === 0) {
        field += text[index];
        index++;
      }
      continue;
    }
    if (character === ',') {
      recordHasContent = true;
      endField();
      index++;
      continue;
    }
    const breakLength = lineBreakLength(index);
    if (breakLength > 0) {
      endRecord();
      line++;
      index += breakLength;
      continue;
    }
    if (character.trim().length > 0) recordHasContent = true;
    field += character;
    index++;
  }
  if (recordHasContent || fields.length > 0) endRecord();
  return records;
}
