// The batch gauges as a scrape shows them: bakito's names, the configured labels plus node and
// executionID, the `latest` series, and pruning of an execution's series.

import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BatchMetrics } from '../../../src/triggers/batch/batchMetrics.ts';

const E1 = '20261129150000';
const E2 = '20261129150100';

function setUp(latestMetricsLabel: boolean, reportHistory?: number) {
  const registry = new Registry();
  const metrics = new BatchMetrics(registry, {
    latestMetricsLabel,
    ...(reportHistory === undefined ? {} : { reportHistory }),
    metrics: {
      prefix: 'foo',
      gauges: { test: { help: 'help ...', labels: ['label_a', 'label_b'] }, up: { help: 'up?', labels: [] } },
    },
  });
  /** The exposition lines of one metric, without HELP/TYPE. */
  const series = async (name: string) =>
    (await registry.metrics())
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .sort();
  return { registry, metrics, series };
}

describe('batch metrics', () => {
  it('names result gauges <prefix>_<suffix> with their labels plus node and executionID', async () => {
    const { metrics, registry, series } = setUp(false);
    metrics.resultsReceived(E1, 'node-1', {
      test: [
        { value: 1, labels: { label_a: 'AAA', label_b: 'BBB' } },
        { value: 2.554, labels: { label_a: 'AAA2' } },
      ],
      up: [{ value: 1, labels: {} }],
    });
    expect(await series('foo_test')).toEqual([
      `foo_test{label_a="AAA",label_b="BBB",node="node-1",executionID="${E1}"} 1`,
      `foo_test{label_a="AAA2",label_b="",node="node-1",executionID="${E1}"} 2.554`,
    ]);
    expect(await series('foo_up')).toEqual([`foo_up{node="node-1",executionID="${E1}"} 1`]);
    const text = await registry.metrics();
    expect(text).toContain('# HELP foo_test help ...');
    expect(text).toContain('# TYPE foo_test gauge');
  });

  it('has the controller’s own gauges: pods, current_execution_id, processing, duration', async () => {
    const { metrics, series } = setUp(false);
    metrics.executionStarted(E1, 5);
    metrics.podFinished(E1, 'node-1', false, 1200);
    metrics.podFinished(E1, 'node-2', true, 300);
    expect(await series('foo_pods')).toEqual(['foo_pods 5']);
    expect(await series('foo_current_execution_id')).toEqual([`foo_current_execution_id ${Number(E1)}`]);
    expect(await series('foo_processing')).toEqual([
      `foo_processing{node="node-1",executionID="${E1}"} 0`,
      `foo_processing{node="node-2",executionID="${E1}"} 1`,
    ]);
    expect(await series('foo_duration')).toEqual([
      `foo_duration{node="node-1",executionID="${E1}"} 1200`,
      `foo_duration{node="node-2",executionID="${E1}"} 300`,
    ]);
    metrics.restoreCurrentExecution(E2);
    expect(await series('foo_current_execution_id')).toEqual([`foo_current_execution_id ${Number(E2)}`]);
  });

  it('adds executionID="latest" series when latestMetricsLabel is set, the newest value winning', async () => {
    const { metrics, series } = setUp(true);
    metrics.resultsReceived(E1, 'node-1', { up: [{ value: 1, labels: {} }] });
    metrics.resultsReceived(E2, 'node-1', { up: [{ value: 0, labels: {} }] });
    metrics.podFinished(E2, 'node-1', true, 10);
    expect(await series('foo_up')).toEqual([
      `foo_up{node="node-1",executionID="${E1}"} 1`,
      `foo_up{node="node-1",executionID="${E2}"} 0`,
      'foo_up{node="node-1",executionID="latest"} 0',
    ]);
    expect(await series('foo_processing')).toContain('foo_processing{node="node-1",executionID="latest"} 1');
  });

  it('has no latest series when latestMetricsLabel is off', async () => {
    const { metrics, registry } = setUp(false);
    metrics.resultsReceived(E1, 'node-1', { up: [{ value: 1, labels: {} }] });
    metrics.podFinished(E1, 'node-1', false, 1);
    expect(await registry.metrics()).not.toContain('latest');
  });

  it('prunes every series of an execution and nothing else', async () => {
    const { metrics, series } = setUp(true);
    for (const id of [E1, E2]) {
      metrics.resultsReceived(id, 'node-1', {
        test: [{ value: 1, labels: { label_a: 'a' } }],
        up: [{ value: 1, labels: {} }],
      });
      metrics.podFinished(id, 'node-1', false, 5);
    }
    metrics.prune(E1);
    for (const name of ['foo_test', 'foo_up', 'foo_processing', 'foo_duration']) {
      const lines = await series(name);
      expect(
        lines.some((l) => l.includes(E1)),
        name,
      ).toBe(false);
      expect(
        lines.some((l) => l.includes(E2)),
        name,
      ).toBe(true);
      expect(
        lines.some((l) => l.includes('"latest"')),
        name,
      ).toBe(true);
    }
    metrics.prune(E1); // twice is harmless
  });

  it('prunes a latest series with the execution whose value it shows, not before', async () => {
    const { metrics, series } = setUp(true);
    // node-2 (and label value "gone") reported only in E1; node-1 in E1 and E2.
    metrics.resultsReceived(E1, 'node-1', { test: [{ value: 1, labels: { label_a: 'gone' } }] });
    metrics.resultsReceived(E1, 'node-2', { up: [{ value: 1, labels: {} }] });
    metrics.podFinished(E1, 'node-2', false, 5);
    metrics.resultsReceived(E2, 'node-1', { test: [{ value: 2, labels: { label_a: 'a' } }] });
    metrics.podFinished(E2, 'node-1', false, 7);
    const latest = async () =>
      (await Promise.all(['foo_test', 'foo_up', 'foo_processing', 'foo_duration'].map(series)))
        .flat()
        .filter((l) => l.includes('executionID="latest"'));
    expect(await latest()).toEqual([
      'foo_test{label_a="a",label_b="",node="node-1",executionID="latest"} 2',
      'foo_test{label_a="gone",label_b="",node="node-1",executionID="latest"} 1',
      'foo_up{node="node-2",executionID="latest"} 1',
      'foo_processing{node="node-1",executionID="latest"} 0',
      'foo_processing{node="node-2",executionID="latest"} 0',
      'foo_duration{node="node-1",executionID="latest"} 7',
      'foo_duration{node="node-2",executionID="latest"} 5',
    ]);
    metrics.prune(E1);
    expect(await latest()).toEqual([
      'foo_test{label_a="a",label_b="",node="node-1",executionID="latest"} 2',
      'foo_processing{node="node-1",executionID="latest"} 0',
      'foo_duration{node="node-1",executionID="latest"} 7',
    ]);
    metrics.prune(E2);
    expect(await latest()).toEqual([]);
  });

  it('keeps the series of at most reportHistory executions on its own (a follower never prunes with reports)', async () => {
    const { metrics, series } = setUp(true, 2);
    const E3 = '20261129150200';
    for (const id of [E1, E2, E3]) {
      metrics.resultsReceived(id, 'node-1', { up: [{ value: 1, labels: {} }] });
      metrics.podFinished(id, 'node-1', false, 5);
    }
    for (const name of ['foo_up', 'foo_processing', 'foo_duration']) {
      const lines = await series(name);
      expect(
        lines.some((l) => l.includes(E1)),
        name,
      ).toBe(false);
      expect(
        lines.filter((l) => l.includes(E2) || l.includes(E3)),
        name,
      ).toHaveLength(2);
      expect(
        lines.some((l) => l.includes('"latest"')),
        name,
      ).toBe(true);
    }
    // A late callback of an execution older than the kept ones leaves nothing behind.
    metrics.resultsReceived(E1, 'node-2', { up: [{ value: 3, labels: {} }] });
    expect((await series('foo_up')).some((l) => l.includes(E1))).toBe(false);
    expect((await series('foo_up')).some((l) => l.includes(E2))).toBe(true);
  });

  it('replaces its gauges when created again on the same registry (a service restarted in-process)', async () => {
    const { registry, metrics } = setUp(false);
    metrics.resultsReceived(E1, 'node-1', { up: [{ value: 1, labels: {} }] });
    const again = new BatchMetrics(registry, {
      latestMetricsLabel: false,
      metrics: { prefix: 'foo', gauges: { up: { help: 'up?', labels: ['zone'] } } },
    });
    expect(await registry.metrics()).not.toContain(`executionID="${E1}"`);
    again.resultsReceived(E2, 'node-1', { up: [{ value: 2, labels: { zone: 'a' } }] });
    expect(await registry.metrics()).toContain(`foo_up{zone="a",node="node-1",executionID="${E2}"} 2`);
  });

  it('does not let a late callback of an older execution overwrite a node’s latest series', async () => {
    const { metrics, series } = setUp(true);
    metrics.resultsReceived(E2, 'node-1', { up: [{ value: 2, labels: {} }] });
    metrics.podFinished(E2, 'node-1', false, 20);
    metrics.resultsReceived(E1, 'node-1', { up: [{ value: 1, labels: {} }] });
    metrics.podFinished(E1, 'node-1', true, 10);
    expect(await series('foo_up')).toContain('foo_up{node="node-1",executionID="latest"} 2');
    expect(await series('foo_up')).toContain(`foo_up{node="node-1",executionID="${E1}"} 1`);
    expect(await series('foo_processing')).toContain('foo_processing{node="node-1",executionID="latest"} 0');
    expect(await series('foo_duration')).toContain('foo_duration{node="node-1",executionID="latest"} 20');
  });
});
