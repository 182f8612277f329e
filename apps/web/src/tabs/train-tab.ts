import type { RawConfig, TrainerEvent } from '@webtune/train';
import type { TrainingStatus } from '../app-state.js';
import type { BoardContext } from '../board.js';
import type { RunState } from '../engine/protocol.js';
import { h, replaceChildren } from '../ui/dom.js';
import { formatBytes, formatDuration, formatNumber } from '../ui/format.js';
import { MetricsChart } from '../ui/metrics-chart.js';
import { TaskStatus } from '../ui/task-status.js';
import { TrainingChart } from '../ui/training-chart.js';
import { runYamlPanel } from './run-yaml.js';
import { StageWarnings } from './stage-warnings.js';
import { TrainSettingsForm } from './train-settings.js';

const MAX_LOG_LINES = 500;
/** Where the Train tab keeps its settings and run name across reloads. */
const SETTINGS_KEY = 'webtune.train-settings';

/**
 * Train: stage, method and hyperparameters; start, pause (a checkpoint, then resume), stop; the
 * live chart with diagnostics, and speed, memory and time left. Runs in this tab's worker or, in
 * remote mode, on the machine behind `webtune webui`.
 */
export function trainTab(context: BoardContext): HTMLElement {
  const { engine, store, remote } = context;
  const settings = new TrainSettingsForm();
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? 'null') as Record<string, unknown> | null;
    if (saved) settings.restore(saved);
  } catch {
    // unreadable settings: the defaults stay
  }
  const saveSettings = () => localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings.snapshot()));
  settings.element.addEventListener('change', saveSettings);
  settings.element.addEventListener('input', saveSettings);
  /** Keys of a loaded YAML the form does not show: sent along with the form's. */
  let extraConfig: RawConfig = {};
  const chart = new TrainingChart();
  /** The stage's own metrics (KTO/DPO rewards, PPO reward and KL...), and warnings about them. */
  const stageChart = new MetricsChart();
  let stageWarnings = new StageWarnings();
  const status = new TaskStatus('Training');
  const metrics = h('dl', { class: 'metrics', 'aria-label': 'Training progress' });
  const log = h('ol', { class: 'log', 'aria-label': 'Training log' });
  const checkpointNote = h('p', { class: 'note', 'aria-live': 'polite' });
  const targetNote = h('p', { class: 'note target-note' });
  const start = h('button', { type: 'button', class: 'primary' }, 'Start');
  const pause = h('button', { type: 'button', disabled: true }, 'Pause');
  const resume = h('button', { type: 'button', disabled: true }, 'Resume');
  const stop = h('button', { type: 'button', disabled: true }, 'Stop');
  const useResult = h('button', { type: 'button', hidden: true }, 'Use the trained result');
  let remoteRun: { id: string; close: () => void } | null = null;
  /** The config of the last remote run: what Resume sends again, with resume_from_checkpoint. */
  let lastRemoteConfig: RawConfig | null = null;
  /** What the run of this name left in this browser (null: not read yet, or a run just started). */
  let runState: RunState | null = null;
  const hasCheckpoint = () => (runState?.checkpoints.length ?? 0) > 0;
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
        else {
          chart.reset(event.totalSteps);
          stageChart.reset();
        }
        stageWarnings = new StageWarnings({ klTarget: Number(runConfigOrEmpty().ppo_target ?? 6) });
        say(
          event.resumedFrom
            ? `Resumed from ${event.resumedFrom} at step ${event.firstStep} of ${event.totalSteps}.`
            : `Started: ${event.totalSteps} steps over ${event.trainRows} rows (${event.validationRows} for evaluation), ${event.trainableParameters.toLocaleString('en-US')} trainable parameters.`,
        );
        break;
      case 'step-end':
        chart.addStep(event.step, event.loss, event.learningRate);
        stageChart.addStep(event.step, event.metrics);
        for (const warning of stageWarnings.observe(event.step, event.metrics)) {
          chart.addMarker(warning);
          say(`warning at step ${warning.step}: ${warning.message} ${warning.advice}`);
        }
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
        checkpointNote.textContent = remoteRun
          ? `Last checkpoint on the server: ${event.path}.`
          : `Last checkpoint: ${event.path}. A closed or crashed tab resumes from it.`;
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

  const finish = (reason: string, steps: number, onServer = false) => {
    const paused = pausing && reason === 'stopped';
    pausing = false;
    setStatus(
      paused ? 'paused' : reason === 'completed' ? 'completed' : reason === 'stopped' ? 'stopped' : 'failed',
    );
    status.done(
      paused
        ? onServer
          ? `Paused at step ${steps} on the server: press Resume to continue from its last checkpoint.`
          : `Paused at step ${steps}: press Resume to continue.`
        : `Training ${reason} after ${steps} steps.`,
    );
    if (!onServer) refreshRun();
  };

  /** The run's whole config: the Data tab's keys, the Train tab's, and a loaded YAML's others. */
  const runConfig = (): RawConfig => {
    const state = store.get();
    const config: RawConfig = { ...context.dataConfig(), ...extraConfig, ...settings.readLlamaFactory() };
    delete config.output_dir;
    if (state.model) config.model_name_or_path ??= state.model.location;
    if (state.data) config.dataset ??= state.data.report.datasets.map((dataset) => dataset.name).join(',');
    return config;
  };
  /** The run's config, or {} while the form holds a value it refuses. */
  const runConfigOrEmpty = (): RawConfig => {
    try {
      return runConfig();
    } catch {
      return {};
    }
  };

  const run = async (resumeRun: boolean) => {
    let runSettings: ReturnType<TrainSettingsForm['read']>;
    try {
      runSettings = settings.read(resumeRun);
      runSettings.config = { ...extraConfig, ...runSettings.config };
    } catch (error) {
      status.fail(error);
      return;
    }
    const remoteTarget = store.get().target === 'remote';
    // The click shows at once that the run is starting (no stale result while the worker is asked);
    // a cancelled start puts back what was shown.
    const shown = status.save();
    status.start(resumeRun ? 'Resuming' : 'Training');
    // Start over on a run with checkpoints deletes them: only when the user says so.
    if (!resumeRun && !remoteTarget) {
      try {
        runState = await engine.call({ kind: 'run-state', runName: runSettings.runName });
      } catch {
        runState = null;
      }
    }
    if (!resumeRun && !remoteTarget && hasCheckpoint()) {
      const names = runState!.checkpoints.join(', ');
      const confirmed = window.confirm(
        `Start run “${runSettings.runName}” over? This deletes its checkpoints in this browser (${names}). Cancel, then Resume, to continue it instead.`,
      );
      if (!confirmed) {
        status.restore(shown);
        return;
      }
    }
    setStatus('running');
    status.start(resumeRun ? 'Resuming' : 'Training');
    if (!resumeRun) {
      runState = null;
      checkpointNote.textContent = '';
      useResult.hidden = true;
    }
    if (remoteTarget) {
      await runRemote(resumeRun);
      return;
    }
    try {
      const result = await engine.call({ kind: 'train', settings: runSettings }, (event) => {
        if (event.type === 'trainer') onTrainerEvent(event.event);
        else if (event.type === 'progress') status.progress(event.label, event.done, event.total);
        else if (event.type === 'log') say(event.line);
      });
      finish(result.reason, result.steps);
    } catch (error) {
      pausing = false;
      setStatus('failed');
      status.fail(error);
      say(`Failed: ${(error as Error).message}`);
    }
  };

  const runRemote = async (resumeRun: boolean) => {
    try {
      // The same config as the YAML, with the server's model and datasets; Resume sends it again.
      const config: RawConfig =
        resumeRun && lastRemoteConfig
          ? { ...lastRemoteConfig, resume_from_checkpoint: true }
          : { ...runConfig(), ...context.remoteDataConfig() };
      delete config.output_dir;
      if (!resumeRun) lastRemoteConfig = config;
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
            } else finish(end.status, lastStep, true);
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

  context.startRemoteRun = () => {
    if (store.get().target === 'remote' && !start.disabled) run(false);
  };
  // Leaving the page stops a run in this tab (it resumes from its last checkpoint): ask first.
  window.addEventListener('beforeunload', (event) => {
    const training = store.get().training;
    if (store.get().target === 'browser' && (training === 'running' || training === 'pausing')) {
      event.preventDefault();
      event.returnValue = '';
    }
  });
  useResult.addEventListener('click', async () => {
    const runName = settings.runName.value.trim() || 'run-1';
    const restored = await status.run(
      `Loading the result of run “${runName}”`,
      () => engine.call({ kind: 'restore-run', runName }, status.onEvent),
      (result) =>
        `Using the result of run “${result.runName}” (step ${result.step}): Chat, Evaluate and Export use it.`,
    );
    if (restored) store.update({ tuned: true, training: 'completed' });
  });
  start.addEventListener('click', () => run(false));
  resume.addEventListener('click', () => run(true));
  pause.addEventListener('click', () => requestStop(true));
  stop.addEventListener('click', () => requestStop(false));

  /**
   * Reads what the named run left in this browser: a completed run offers its result, an
   * unfinished one Resume; its trainer_log.jsonl refills the chart.
   */
  const refreshRun = async () => {
    const state = store.get();
    if (state.target !== 'browser' || !state.device) return;
    const runName = settings.runName.value.trim() || 'run-1';
    try {
      runState = await engine.call({ kind: 'run-state', runName });
    } catch {
      runState = null;
    }
    const found = runState;
    const idle = !['running', 'pausing', 'stopping'].includes(store.get().training);
    if (idle && found && found.log.length > 0 && chart.counts.loss === 0) {
      chart.loadHistory(found.log);
      stageChart.loadHistory(found.log);
    }
    const last = found?.checkpoints[found.checkpoints.length - 1];
    useResult.hidden = !found?.hasResult;
    if (found?.completed) {
      checkpointNote.textContent = `Run “${runName}” completed ${found.lastStep} of ${found.totalSteps} steps in this browser${found.hasResult ? ': use its result to chat, evaluate and export it' : ''}. Start trains it again from the beginning.`;
    } else if (last) {
      checkpointNote.textContent = `Run “${runName}” has ${last} in this browser: load the same model and data, then Resume.`;
    } else if (idle) checkpointNote.textContent = '';
    updateButtons();
  };
  settings.runName.addEventListener('change', () => {
    chart.reset(1);
    stageChart.reset();
    refreshRun();
  });

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
    const stoppedHere =
      state.training === 'paused' || state.training === 'stopped' || state.training === 'failed';
    const resumable = remoteReady
      ? stoppedHere && lastRemoteConfig !== null
      : !runState?.completed && (stoppedHere || (state.training === 'idle' && hasCheckpoint()));
    resume.disabled = running || !(localReady || remoteReady) || !resumable;
    // The primary action is the one that keeps the work: Resume when there is something to resume.
    resume.classList.toggle('primary', !resume.disabled);
    start.classList.toggle('primary', resume.disabled);
    useResult.disabled = running || state.target !== 'browser' || !state.device || !state.model;
    // PPO keeps no checkpoints (trainPpo saves at the end only): it can be stopped, not paused.
    pause.disabled = state.training !== 'running' || settings.stage.value === 'ppo';
    stop.disabled = state.training !== 'running' && state.training !== 'pausing';
    const what = state.target === 'remote' ? `the server at ${state.remote.url}` : 'this browser’s GPU';
    targetNote.textContent =
      localReady || remoteReady
        ? `Runs on ${what}.`
        : state.target === 'remote'
          ? 'Connect to the server in the Remote tab first.'
          : state.deviceError
            ? 'This browser has no WebGPU, so it cannot train here: connect to a server in the Remote tab to train there.'
            : 'Load a model (Model tab) and check a dataset (Data tab) first.';
  };
  store.subscribe((state, previous) => {
    updateButtons();
    if (state.device !== previous.device || state.model !== previous.model) refreshRun();
    if (state.stage !== previous.stage) settings.setStage(state.stage);
    if (state.data !== previous.data && state.data) settings.setStage(state.data.stage);
  });
  settings.stage.value = store.get().stage;
  updateButtons();

  const yaml = runYamlPanel({
    config: runConfig,
    fileName: () => `${settings.runName.value.trim() || 'run-1'}.yaml`,
    load: (config) => {
      context.loadRunConfig(config);
      const rest = settings.applyConfig(config);
      const dataKeys = ['stage', 'template', 'cutoff_len', 'val_size', 'max_samples'];
      const placeKeys = ['model_name_or_path', 'dataset', 'dataset_dir', 'output_dir'];
      extraConfig = Object.fromEntries(
        rest
          .filter((key) => !dataKeys.includes(key) && !placeKeys.includes(key))
          .map((key) => [key, config[key]]),
      );
      saveSettings();
    },
    fail: (error) => status.fail(error),
  });
  settings.element.addEventListener('change', yaml.refresh);

  return h(
    'section',
    { 'aria-labelledby': 'train-heading' },
    h('h2', { id: 'train-heading' }, 'Train'),
    h('div', { class: 'card' }, settings.element, yaml.element),
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
        useResult,
      ),
      targetNote,
      status.element,
      checkpointNote,
      metrics,
      chart.element,
      stageChart.element,
      h('details', { class: 'log-wrap', open: true }, h('summary', {}, 'Log'), log),
    ),
  );
}
