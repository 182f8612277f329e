/**
 * Rows that arrive one at a time (`streaming: true`, @webtune/data's ExampleStream) instead of a list
 * held in memory. The trainer pulls each step's rows when the step starts, so host memory holds one
 * step's rows plus whatever the stream itself buffers. A stream never runs out (it starts a new pass
 * after the last row), so a streamed run needs max_steps. Its position is plain JSON: checkpoints
 * save it and a resume seeks back to it.
 */
export interface RowStream<Row> {
  /** The next row. */
  next(): Promise<Row>;
  /** Where the stream stands after the last row given (JSON). */
  position(): unknown;
  /** Moves to a position `position()` returned (a resume). */
  seek(position: unknown): Promise<void>;
}

/** Whether the trainer's `train` rows are a stream rather than a list. */
export function isRowStream<Row>(rows: readonly Row[] | RowStream<Row>): rows is RowStream<Row> {
  return !Array.isArray(rows) && typeof (rows as RowStream<Row>).next === 'function';
}

/** Pulls `count` rows, mapping each (e.g. an encoded example to the task's row kind). */
export async function pullRows<Row>(stream: RowStream<Row>, count: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) rows.push(await stream.next());
  return rows;
}
