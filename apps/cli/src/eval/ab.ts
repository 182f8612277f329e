/**
 * `webtune eval ab`: a blind A/B session in the terminal. Base and tuned answer every prompt; the
 * pairs are shown in a shuffled order with the answers on shuffled sides, the person votes a, b or
 * t (tie) one line at a time on standard input (a terminal or a pipe), and the sides are revealed
 * at the end.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type BlindResult,
  BlindSession,
  type BlindVote,
  type ComparisonSet,
  formatWinRate,
  promptText,
} from '@webtune/eval';
import { numberOption, optional, parseCommandLine } from '../args.js';
import { bold, cyan, dim, printable, table } from '../ui.js';
import {
  COMPARISON_OPTIONS,
  collectComparison,
  comparisonRequest,
  exportPreferences,
  pairJson,
  winnerName,
} from './comparison.js';

/** What a line of input means. */
export type VoteInput = BlindVote | 'skip' | 'quit' | 'invalid';

/** Reads a typed vote: a, b, t / tie / =, s / skip, q / quit (any case). */
export function parseVoteInput(line: string): VoteInput {
  const text = line.trim().toLowerCase();
  if (text === 'a') return 'A';
  if (text === 'b') return 'B';
  if (text === 't' || text === 'tie' || text === '=') return 'tie';
  if (text === 's' || text === 'skip') return 'skip';
  if (text === 'q' || text === 'quit' || text === 'exit') return 'quit';
  return 'invalid';
}

const VOTE_PROMPT = 'vote a / b / t (tie), s skip, q quit> ';

export async function abCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    ...COMPARISON_OPTIONS,
    seed: { type: 'string' },
    save: { type: 'string' },
  });
  const request = await comparisonRequest(values, 'ab_preferences');
  const seed = numberOption(values, 'seed', { integer: true, min: 0 });
  const save = optional(values, 'save');
  const set = await collectComparison(request, false);
  const session = BlindSession.create(set, { seed });
  const interactive = Boolean(process.stdin.isTTY);
  console.log(
    `${bold('blind A/B')}: ${session.length} prompts, each with two answers in a random order; ` +
      'the models are revealed at the end.',
  );

  const lines = createInterface({
    input: process.stdin,
    output: interactive ? process.stdout : undefined,
    terminal: interactive,
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  // Ctrl-C at the prompt ends the session: the votes so far are still unblinded.
  lines.on('SIGINT', () => lines.close());
  const input = lines[Symbol.asyncIterator]();
  let stopped = false;
  try {
    for (let index = 0; index < session.length && !stopped; index++) {
      showItem(session, index);
      for (;;) {
        if (interactive) {
          // readline draws the prompt itself, so line editing keeps it on screen.
          lines.setPrompt(VOTE_PROMPT);
          lines.prompt();
        } else process.stdout.write(VOTE_PROMPT);
        const next = await input.next();
        if (next.done) {
          process.stdout.write('\n');
          stopped = true;
          break;
        }
        if (!interactive) process.stdout.write(`${next.value}\n`);
        const vote = parseVoteInput(next.value);
        if (vote === 'invalid') {
          console.log(dim('type a, b or t (tie); s skips this pair, q ends the session'));
          continue;
        }
        if (vote === 'quit') stopped = true;
        else if (vote !== 'skip') session.vote(index, vote);
        break;
      }
    }
  } finally {
    lines.close();
  }

  const result = session.unblind();
  printResult(session, result);
  if (save) {
    await mkdir(dirname(save), { recursive: true });
    await writeFile(save, `${JSON.stringify(savedSession(set, session, result), null, 2)}\n`);
    console.log(`saved the session to ${save}`);
  }
  if (request.exportDataset) {
    await exportPreferences(request.exportDataset, request.datasetName, set, result.outcomes, (line) =>
      console.log(line),
    );
  }
  return 0;
}

function showItem(session: BlindSession, index: number): void {
  const item = session.item(index);
  console.log('');
  console.log(bold(`── ${index + 1} of ${session.length} ${'─'.repeat(40)}`));
  console.log(`${cyan('prompt')} ${indent(promptText(item.prompt))}`);
  console.log('');
  console.log(`${bold('[A]')} ${indent(item.a)}`);
  console.log('');
  console.log(`${bold('[B]')} ${indent(item.b)}`);
  console.log('');
}

/** Model output as printable lines, continuation lines indented under the label. */
function indent(text: string): string {
  if (text.trim().length === 0) return dim('(empty answer)');
  return text
    .split('\n')
    .map((line) => printable(line))
    .join('\n    ');
}

function printResult(session: BlindSession, result: BlindResult): void {
  console.log('');
  if (result.items.length === 0) {
    console.log(`no votes: nothing to unblind (${result.skipped} skipped)`);
    return;
  }
  console.log(bold('unblinded'));
  const rows = [['#', 'prompt', 'A', 'B', 'vote', 'winner']];
  for (const item of result.items) {
    const prompt = printable(promptText(session.item(item.index).prompt));
    rows.push([
      String(item.index + 1),
      prompt.length > 40 ? `${prompt.slice(0, 39)}…` : prompt,
      item.shownAs.A,
      item.shownAs.B,
      item.vote,
      winnerName(session.set, item.winner) ?? '',
    ]);
  }
  console.log(table(rows));
  const { summary } = result;
  const [base, tuned] = summary.models;
  console.log('');
  console.log(
    `${bold(`${base} wins ${summary.wins[0]}`)}, ${bold(`${tuned} wins ${summary.wins[1]}`)}, ` +
      `${bold(`ties ${summary.ties}`)} (${summary.total} voted, ${result.skipped} skipped)`,
  );
  console.log(formatWinRate(summary));
}

function savedSession(set: ComparisonSet, session: BlindSession, result: BlindResult) {
  return {
    models: set.models,
    session: session.toJSON(),
    pairs: set.pairs.map((pair) => pairJson(set, pair.id)),
    items: result.items.map((item) => ({
      position: item.index + 1,
      pairId: item.pairId,
      shownAs: item.shownAs,
      vote: item.vote,
      winner: winnerName(set, item.winner),
    })),
    summary: result.summary,
    skipped: result.skipped,
  };
}
