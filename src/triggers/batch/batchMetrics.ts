// The cron fan-out's Prometheus metrics, named as bakito names them: one gauge per configured
// result suffix (`<prefix>_<suffix>`, configured labels + node + executionID, and the same series
// with executionID="latest" when latestMetricsLabel is set), and the controller's own
// `<prefix>_pods`, `_processing`, `_duration` and `_current_execution_id`. Series of an execution
// are pruned when its report is pruned, so the scrape does not grow with every run.

import { Gauge, type Registry } from 'prom-client';
import type { BatchConfig } from './batchConfig.ts';
import type { BatchResults } from './batchResults.ts';
import { executionIdAsNumber } from './executionId.ts';

const LATEST = 'latest';

/** A gauge that remembers which label sets belong to which execution, to prune them together. */
class ExecutionGauge {
  readonly gauge: Gauge;
  readonly #labelNames: string[];
  /** executionID → (label set as JSON → label set). */
  readonly #byExecution = new Map<string, Map<string, Record<string, string>>>();
  /** `latest` label set as JSON → the execution whose value it shows. */
  readonly #latestFrom = new Map<string, { executionId: string; labels: Record<string, string> }>();

  constructor(registry: Registry, name: string, help: string, labelNames: string[]) {
    this.#labelNames = [...labelNames, 'node', 'executionID'];
    this.gauge = new Gauge({
      name,
      help,
      labelNames: this.#labelNames,
      registers: [replacing(registry, name)],
    });
  }

  set(executionId: string, labels: Record<string, string>, value: number): void {
    const full = this.#full(executionId, labels);
    this.gauge.set(full, value);
    let sets = this.#byExecution.get(executionId);
    if (sets === undefined) {
      sets = new Map();
      this.#byExecution.set(executionId, sets);
    }
    sets.set(JSON.stringify(full), full);
  }

  /**
   * The executionID="latest" series of `labels`, showing the value `executionId` reported. It goes
   * when that execution is pruned (unless a newer execution has set it since): a node that left the
   * cluster, or a label value no longer reported, leaves no `latest` series behind for ever.
   */
  setLatest(executionId: string, labels: Record<string, string>, value: number): void {
    const full = this.#full(LATEST, labels);
    this.gauge.set(full, value);
    this.#latestFrom.set(JSON.stringify(full), { executionId, labels: full });
  }

  prune(executionId: string): void {
    for (const labels of this.#byExecution.get(executionId)?.values() ?? []) this.gauge.remove(labels);
    this.#byExecution.delete(executionId);
    for (const [key, latest] of this.#latestFrom) {
      if (latest.executionId !== executionId) continue;
      this.gauge.remove(latest.labels);
      this.#latestFrom.delete(key);
    }
  }

  #full(executionId: string, labels: Record<string, string>): Record<string, string> {
    const full: Record<string, string> = {};
    for (const name of this.#labelNames) full[name] = labels[name] ?? '';
    full.executionID = executionId;
    return full;
  }
}

export class BatchMetrics {
  readonly #results = new Map<string, ExecutionGauge>();
  readonly #processing: ExecutionGauge;
  readonly #duration: ExecutionGauge;
  readonly #pods: Gauge;
  readonly #currentExecution: Gauge;
  readonly #latest: boolean;
  /** Executions with series here; at most `#keep`, the newest by id. */
  readonly #executions = new Set<string>();
  readonly #keep: number;
  /** node → the newest execution whose values its `latest` series show. */
  readonly #newestByNode = new Map<string, string>();

  /**
   * `reportHistory` bounds the executions whose series are kept: every replica records the
   * callbacks and pods it serves, but only the leader prunes with the reports, so without a bound a
   * follower's scrape would grow with every execution.
   */
  constructor(
    registry: Registry,
    config: Pick<BatchConfig, 'metrics' | 'latestMetricsLabel'> & { reportHistory?: number },
  ) {
    const { prefix, gauges } = config.metrics;
    this.#latest = config.latestMetricsLabel;
    this.#keep = config.reportHistory ?? Number.POSITIVE_INFINITY;
    for (const [suffix, gauge] of Object.entries(gauges)) {
      this.#results.set(
        suffix,
        new ExecutionGauge(registry, `${prefix}_${suffix}`, gauge.help, gauge.labels),
      );
    }
    this.#processing = new ExecutionGauge(
      registry,
      `${prefix}_processing`,
      'Node with processing error, 1: has error / 0: no error',
      [],
    );
    this.#duration = new ExecutionGauge(
      registry,
      `${prefix}_duration`,
      'execution duration in milliseconds',
      [],
    );
    this.#pods = new Gauge({
      name: `${prefix}_pods`,
      help: 'the number of pods started for the last execution',
      registers: [replacing(registry, `${prefix}_pods`)],
    });
    this.#currentExecution = new Gauge({
      name: `${prefix}_current_execution_id`,
      help: 'The current execution ID',
      registers: [replacing(registry, `${prefix}_current_execution_id`)],
    });
  }

  executionStarted(executionId: string, pods: number): void {
    this.#currentExecution.set(executionIdAsNumber(executionId));
    this.#pods.set(pods);
  }

  /** After a restart: the newest kept execution is the current one. */
  restoreCurrentExecution(executionId: string): void {
    this.#currentExecution.set(executionIdAsNumber(executionId));
  }

  resultsReceived(executionId: string, node: string, results: BatchResults): void {
    const latest = this.#latest && this.#isNewestFor(node, executionId);
    for (const [suffix, list] of Object.entries(results)) {
      const gauge = this.#results.get(suffix);
      if (gauge === undefined) continue; // validated before; a config change since is not a crash
      for (const result of list) {
        const labels = { ...result.labels, node };
        gauge.set(executionId, labels, result.value);
        if (latest) gauge.setLatest(executionId, labels, result.value);
      }
    }
    this.#track(executionId);
  }

  podFinished(executionId: string, node: string, failed: boolean, durationMs: number): void {
    this.#processing.set(executionId, { node }, failed ? 1 : 0);
    this.#duration.set(executionId, { node }, durationMs);
    if (this.#latest && this.#isNewestFor(node, executionId)) {
      this.#processing.setLatest(executionId, { node }, failed ? 1 : 0);
      this.#duration.setLatest(executionId, { node }, durationMs);
    }
    this.#track(executionId);
  }

  prune(executionId: string): void {
    for (const gauge of this.#results.values()) gauge.prune(executionId);
    this.#processing.prune(executionId);
    this.#duration.prune(executionId);
    this.#executions.delete(executionId);
  }

  /**
   * Whether `executionId` is the newest execution heard of for `node`: a late callback of an older
   * execution must not overwrite the node's `latest` series with stale values.
   */
  #isNewestFor(node: string, executionId: string): boolean {
    const newest = this.#newestByNode.get(node);
    if (newest !== undefined && executionId < newest) return false;
    this.#newestByNode.set(node, executionId);
    return true;
  }

  /** Series were set for `executionId`: beyond the bound, the oldest execution's series go. */
  #track(executionId: string): void {
    if (this.#executions.has(executionId)) return;
    this.#executions.add(executionId);
    while (this.#executions.size > this.#keep) {
      const oldest = [...this.#executions].sort()[0];
      if (oldest === undefined) break;
      this.prune(oldest);
    }
  }
}

/**
 * The registry, with any metric of this name removed: a batch service started again in the same
 * process (a restart of the service, a test) registers its gauges anew, possibly with other labels,
 * and refills them from the report directory, instead of prom-client refusing a second registration.
 */
function replacing(registry: Registry, name: string): Registry {
  registry.removeSingleMetric(name);
  return registry;
}
