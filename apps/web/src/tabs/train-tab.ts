import type { TrainerEvent } from '@webtune/train';
import type { TrainingStatus } from '../app-state.js';
import type { BoardContext } from '../board.js';
import { h, replaceChildren } from '../ui/dom.js';
import { formatBytes, formatDuration, formatNumber } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';
import { TrainingChart } from '../ui/training-chart.js';
import { TrainSettingsForm } from './train-settings.js';

const MAX_LOG_LINES = 500;

/**
 * Train: stage, method and hyperparameters; start, pause (a checkpoint, then resume), stop; the
 * live chart with diagnostics, and speed, memory and time left. Runs in this tab's worker or, in
 * remote mode, on the machine behind `webtune webui`.
 */
export function trainTab(context: BoardContext): HTMLElement {
  const { engine, store, remote } = context;
  const settings = new TrainSettingsForm();
  const chart = new TrainingChart();
  const status = new TaskStatus('Training');
  const metrics = h('dl', { class: 'metrics', 'aria-label': 'Training progress' });
  const log = h('ol', { class: 'log', 'aria-label': 'Training log' });
  const checkpointNote = h('p', { class: 'note', 'aria-live': 'polite' });
  const targetNote = h('p', { class: 'note' });
  const start = h('button', { type: 'button', class: 'primary' }, 'Start');
  const pause = h('button', { type: 'button', disabled: true }, 'Pause');
  const resume = h('button', { type: 'button', disabled: true }, 'Resume');
  const stop = h('button', { type: 'button', disabled: true }, 'Stop');
  let remoteRun: { id: string; close: () => void } | null = null;
  let hasCheckpoint = false;
  let pausing = false;

  const say = (line: string) => {
    log.append(h('li', {}, line));
    while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild?.remove();
    log.scrollTop = log.scrollHeight;
  };
  const setStatus = (training: TrainingStatus) => store.update({ training });

  const showMetrics = (rows: [string, string][]) =>
    replaceChildren(
      metrics,
      rows.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', { 'data-metric': term }, value))),
    );

  const onTrainerEvent = (event: TrainerEvent) => {
    switch (event.type) {
      case 'train-start':
        if (event.resumedFrom) chart.setTotalSteps(event.totalSteps);
        else chart.reset(event.totalSteps);
        say(
          event.resumedFrom
            ? `Resumed from ${event.resumedFrom} at step ${event.firstStep} of ${event.totalSteps}.`
            : `Started: ${event.totalSteps} steps over ${event.trainRows} rows (${event.validationRows} for evaluation), ${event.trainableParameters.toLocaleString('en-US')} trainable parameters.`,
        );
        break;
      case 'step-end':
        chart.addStep(event.step, event.loss, event.learningRate);
        if (store.get().training === 'running') status.progress('Training', event.step, event.totalSteps);
        showMetrics([
          ['Step', `${event.step} / ${event.totalSteps}`],
          ['Epoch', event.epoch.toFixed(2)],
          ['Loss', formatNumber(event.loss)],
          ['Learning rate', event.learningRate.toExponential(2)],
          ['Gradient norm', formatNumber(event.gradNorm)],
          ['Tokens/s', event.tokensPerSecond.toFixed(1)],
          [
            'GPU memory',
            `${formatBytes(event.memory.liveBytes)} (peak ${formatBytes(event.memory.peakBytes)})`,
          ],
          ['Elapsed', formatDuration(event.elapsedMs)],
          ['Time left', formatDuration(event.remainingMs)],
          // The stage's own metrics: DPO's rewards/* and logps/*, a reward model's accuracy.
          ...Object.entries(event.metrics).map(([name, value]): [string, string] => [
            name,
            formatNumber(value),
          ]),
        ]);
        say(
          `step ${event.step}/${event.totalSteps}: loss ${formatNumber(event.loss)}, lr ${event.learningRate.toExponential(2)}, ${event.tokensPerSecond.toFixed(1)} tokens/s`,
        );
        if (event.step > 0) store.update({ tuned: true });
        break;
      case 'eval-end':
        chart.addEval(event.step, event.evalLoss);
        say(`eval at step ${event.step}: loss ${formatNumber(event.evalLoss)}`);
        break;
      case 'checkpoint-saved':
        say(
          `checkpoint ${event.path} saved in ${formatDuration(event.durationMs)}${event.removed.length ? `, removed ${event.removed.join(', ')}` : ''}`,
        );
        hasCheckpoint = true;
        checkpointNote.textContent = `Last checkpoint: ${event.path}. A closed or crashed tab resumes from it.`;
        break;
      case 'diagnostic-raised':
        chart.addMarker(event.diagnostic);
        say(
          `${event.diagnostic.severity} at step ${event.diagnostic.step}: ${event.diagnostic.message} ${event.diagnostic.advice}`,
        );
        break;
      case 'train-end':
        say(
          `Ended (${event.reason}) at step ${event.step} of ${event.totalSteps}, last loss ${formatNumber(event.loss)}, in ${formatDuration(event.elapsedMs)}.`,
        );
        break;
    }
  };

  const finish = (reason: string, steps: number) => {
    const paused = pausing && reason === 'stopped';
    pausing = false;
    setStatus(
      paused ? 'paused' : reason === 'completed' ? 'completed' : reason === 'stopped' ? 'stopped' : 'failed',
    );
    status.done(
      paused
        ? `Paused at step ${steps}: press Resume to continue.`
        : `Training ${reason} after ${steps} steps.`,
    );
  };

  const run = async (resumeRun: boolean) => {
    let runSettings: ReturnType<TrainSettingsForm['read']>;
    try {
      runSettings = settings.read(resumeRun);
    } catch (error) {
      status.fail(error);
      return;
    }
    setStatus('running');
    status.start(resumeRun ? 'Resuming' : 'Training');
    if (store.get().target === 'remote') {
      await runRemote();
      return;
    }
    try {
      const result = await engine.call({ kind: 'train', settings: runSettings }, (event) => {
        if (event.type === 'trainer') onTrainerEvent(event.event);
        else if (event.type === 'progress') status.progress(event.label, event.done, event.total);
      });
      finish(result.reason, result.steps);
    } catch (error) {
      pausing = false;
      setStatus('failed');
      status.fail(error);
      say(`Failed: ${(error as Error).message}`);
    }
  };

  const runRemote = async () => {
    try {
      const config = { ...settings.readLlamaFactory(), ...context.remoteDataConfig() };
      const { id } = await remote.startRun(config);
      say(`Remote run ${id} started on ${remote.url}.`);
      let lastStep = 0;
      remoteRun = {
        id,
        close: remote.follow(id, {
          onTrainerEvent: (event) => {
            if (event.type === 'step-end') lastStep = event.step;
            onTrainerEvent(event);
          },
          onLog: (line) => say(line),
          onEnd: (end) => {
            remoteRun = null;
            if (end.status === 'failed') {
              setStatus('failed');
              status.fail(new Error(end.error ?? 'the remote run failed'));
            } else finish(end.status, lastStep);
          },
          onError: (message) => {
            remoteRun = null;
            setStatus('failed');
            status.fail(new Error(message));
          },
        }),
      };
    } catch (error) {
      setStatus('failed');
      status.fail(error);
    }
  };

  const requestStop = async (asPause: boolean) => {
    pausing = asPause;
    setStatus(asPause ? 'pausing' : 'stopping');
    status.start(asPause ? 'Pausing at the end of this step' : 'Stopping at the end of this step');
    try {
      if (remoteRun) await remote.stopRun(remoteRun.id);
      else await engine.call({ kind: 'stop-training' });
    } catch (error) {
      status.fail(error);
    }
  };

  start.addEventListener('click', () => run(false));
  resume.addEventListener('click', () => run(true));
  pause.addEventListener('click', () => requestStop(true));
  stop.addEventListener('click', () => requestStop(false));

  const refreshCheckpoints = async () => {
    if (store.get().target !== 'browser' || !store.get().device) return;
    try {
      const { checkpoints } = await engine.call({
        kind: 'list-checkpoints',
        runName: settings.runName.value.trim() || 'run-1',
      });
      const last = checkpoints[checkpoints.length - 1];
      hasCheckpoint = last !== undefined;
      checkpointNote.textContent = last
        ? `Run “${settings.runName.value}” has ${last} in this browser: load the same model and data, then Resume.`
        : '';
      updateButtons();
    } catch {
      hasCheckpoint = false;
      checkpointNote.textContent = '';
    }
  };
  settings.runName.addEventListener('change', refreshCheckpoints);

  const updateButtons = () => {
    const state = store.get();
    const running =
      state.training === 'running' || state.training === 'pausing' || state.training === 'stopping';
    const remoteReady = state.target === 'remote' && state.remote.connected;
    const localReady =
      state.target === 'browser' && state.device !== null && state.model !== null && state.data !== null;
    start.disabled = running || !(localReady || remoteReady);
    // A paused, stopped or failed run resumes from its last checkpoint; so does one found in the
    // browser's storage after a reload. A completed run has nothing left to do.
    const resumable =
      state.training === 'paused' ||
      state.training === 'stopped' ||
      state.training === 'failed' ||
      (state.training === 'idle' && hasCheckpoint);
    resume.disabled = running || !localReady || !resumable;
    pause.disabled = state.training !== 'running';
    stop.disabled = state.training !== 'running' && state.training !== 'pausing';
    const what = state.target === 'remote' ? `the server at ${state.remote.url}` : 'this browser’s GPU';
    targetNote.textContent =
      localReady || remoteReady
        ? `Runs on ${what}.`
        : state.target === 'remote'
          ? 'Connect to the server in the Remote tab first.'
          : 'Load a model (Model tab) and check a dataset (Data tab) first.';
  };
  store.subscribe((state, previous) => {
    updateButtons();
    if (state.device !== previous.device || state.model !== previous.model) refreshCheckpoints();
    if (state.data !== previous.data && state.data) settings.stage.value = state.data.stage;
  });
  updateButtons();

  return h(
    'section',
    { 'aria-labelledby': 'train-heading' },
    h('h2', { id: 'train-heading' }, 'Train'),
    h('div', { class: 'card' }, settings.element),
    h(
      'div',
      { class: 'card' },
      h(
        'div',
        { class: 'actions', role: 'group', 'aria-label': 'Training controls' },
        start,
        pause,
        resume,
        stop,
      ),
      targetNote,
      status.element,
      checkpointNote,
      metrics,
      chart.element,
      h('details', { class: 'log-wrap', open: true }, h('summary', {}, 'Log'), log),
    ),
  );
}
