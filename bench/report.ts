// Rows, and the table that puts each leasehold figure next to every peer's with the ratio
// leasehold ÷ peer (above 1 is leasehold ahead for throughput, behind for latency and cost).

import { SYSTEMS, type System } from './peers/peer.ts';

export interface Row {
  figure: string;
  system: System;
  batch: number | null;
  concurrency: number | null;
  value: number;
  unit: string;
}

const PEERS = SYSTEMS.filter((system) => system !== 'leasehold');
const ROW_KEYS = ['figure', 'system', 'batch', 'concurrency', 'value', 'unit'] as const;

/**
 * Throws unless every row is exactly `{figure, system, batch, concurrency, value, unit}` with a
 * known system and a finite value: `--json` is read by scripts, so a malformed row fails the run
 * here instead of surprising a reader.
 */
export function checkRows(rows: readonly Row[]): void {
  for (const row of rows) {
    const keys = Object.keys(row).sort();
    const problem =
      keys.join() !== [...ROW_KEYS].sort().join()
        ? `keys ${keys.join(', ')}`
        : !SYSTEMS.includes(row.system)
          ? `system "${row.system}"`
          : !Number.isFinite(row.value)
            ? `value ${row.value}`
            : [row.batch, row.concurrency].some((n) => n !== null && !Number.isInteger(n))
              ? 'batch or concurrency not an integer or null'
              : typeof row.figure !== 'string' || typeof row.unit !== 'string' || row.figure === ''
                ? 'figure or unit'
                : undefined;
    if (problem !== undefined) throw new Error(`bench row ${JSON.stringify(row)}: bad ${problem}`);
  }
}

export function renderTable(rows: readonly Row[]): string {
  const header = ['figure', 'batch', 'conc', 'unit', ...SYSTEMS, ...PEERS.map((peer) => `lh÷${peer}`)];
  const lines: string[][] = [];
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const key = `${row.figure}\u0000${row.batch}\u0000${row.concurrency}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  for (const group of groups.values()) {
    const first = group[0];
    if (first === undefined) continue;
    const value = (system: System) => group.find((row) => row.system === system)?.value;
    const leasehold = value('leasehold');
    lines.push([
      first.figure,
      first.batch === null ? '' : String(first.batch),
      first.concurrency === null ? '' : String(first.concurrency),
      first.unit,
      ...SYSTEMS.map((system) => formatValue(value(system))),
      ...PEERS.map((peer) => {
        const other = value(peer);
        return leasehold === undefined || other === undefined || other === 0
          ? ''
          : (leasehold / other).toFixed(2);
      }),
    ]);
  }
  const widths = header.map((title, i) =>
    Math.max(title.length, ...lines.map((line) => line[i]?.length ?? 0)),
  );
  const format = (cells: readonly string[]) =>
    cells.map((cell, i) => (i < 4 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [format(header), widths.map((width) => '-'.repeat(width)).join('  '), ...lines.map(format)].join(
    '\n',
  );
}

function formatValue(value: number | undefined): string {
  if (value === undefined) return '-';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(1);
}
