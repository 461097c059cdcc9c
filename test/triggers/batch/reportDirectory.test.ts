// The report directory on a real file system: bakito's layout, the `latest` link, history kept by
// execution id, and no name a pod sends can put a file outside its execution's directory.

import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.ts';
import { ReportDirectory } from '../../../src/triggers/batch/reportDirectory.ts';

const E1 = '20261129150000';
const E2 = '20261129150100';
const E3 = '20261129150200';

/** Every path under `dir`, relative, sorted (links as themselves). */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

describe('report directory', () => {
  let parent: string;
  let root: string;
  let reports: ReportDirectory;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'batch-reports-'));
    root = join(parent, 'reports');
    reports = new ReportDirectory(root);
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('stores results as <dir>/<exec>/<node>.json and files as <node>-<file>', async () => {
    const resultPath = await reports.saveResult(E1, 'node-1', '{"up":[{"value":1}]}');
    const filePath = await reports.saveFile(E1, 'node-1', 'report.txt', Buffer.from('hello'));
    expect(resultPath).toBe(join(root, E1, 'node-1.json'));
    expect(filePath).toBe(join(root, E1, 'node-1-report.txt'));
    expect(await readFile(resultPath, 'utf8')).toBe('{"up":[{"value":1}]}');
    expect(await readFile(filePath, 'utf8')).toBe('hello');
    expect(await tree(root)).toEqual([E1, `${E1}/node-1-report.txt`, `${E1}/node-1.json`]);
  });

  it('replaces a node’s earlier result and leaves no temporary file', async () => {
    await reports.saveResult(E1, 'node-1', '{"a":1}');
    await reports.saveResult(E1, 'node-1', '{"a":2}');
    expect(await readFile(join(root, E1, 'node-1.json'), 'utf8')).toBe('{"a":2}');
    expect(await readdir(join(root, E1))).toEqual(['node-1.json']);
  });

  it('points latest at the newest execution, replacing the link', async () => {
    await reports.markLatest(E1);
    expect(await readlink(join(root, 'latest'))).toBe(E1);
    await reports.markLatest(E2);
    expect((await lstat(join(root, 'latest'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(root, 'latest'))).toBe(E2);
    await reports.saveResult(E2, 'n', '{}');
    expect(await readFile(join(root, 'latest', 'n.json'), 'utf8')).toBe('{}');
    expect((await readdir(root)).sort()).toEqual([E1, E2, 'latest']);
  });

  it('keeps the newest N executions by id, ignoring other entries', async () => {
    for (const id of [E2, E3, E1]) await reports.saveResult(id, 'n', '{}');
    await reports.markLatest(E3);
    await writeFile(join(root, 'README'), 'not an execution');
    expect(await reports.executions()).toEqual([E1, E2, E3]);
    expect(await reports.prune(2)).toEqual([E1]);
    expect(await reports.executions()).toEqual([E2, E3]);
    expect(await reports.prune(2)).toEqual([]);
    expect((await readdir(root)).sort()).toEqual([E2, E3, 'README', 'latest']);
  });

  it('gives back every stored result for a restart, oldest execution first, uploads excluded', async () => {
    await reports.saveResult(E2, 'node-b', '{"b":1}');
    await reports.saveResult(E1, 'node-a', '{"a":1}');
    await reports.saveFile(E1, 'node-a', 'log.txt', Buffer.from('x'));
    expect(await reports.results()).toEqual([
      { executionId: E1, node: 'node-a', body: '{"a":1}' },
      { executionId: E2, node: 'node-b', body: '{"b":1}' },
    ]);
    expect(await new ReportDirectory(join(parent, 'missing')).results()).toEqual([]);
  });

  it.each([
    ['../x'],
    ['..'],
    ['.'],
    ['/etc/passwd'],
    ['a/b'],
    ['a\\b'],
    ['.hidden'],
    ['-rf'],
    ['%2e%2e'],
    [decodeURIComponent('%2e%2e')],
    [decodeURIComponent('%2e%2e%2fx')],
    ['a..b'],
    ['x'.repeat(201)],
    [''],
    ['nul\u0000byte'],
    ['ümlaut'],
  ])('refuses the file name %j and writes nothing', async (name) => {
    const err = await reports.saveFile(E1, 'node-1', name, Buffer.from('evil')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('name');
    expect(await tree(parent)).toEqual([]);
  });

  it('accepts a 200-character name', async () => {
    const name = `${'x'.repeat(196)}.txt`;
    await reports.saveFile(E1, 'node-1', name, Buffer.from('ok'));
    expect(await readdir(join(root, E1))).toEqual([`node-1-${name}`]);
  });

  it('refuses, as bad input, a name that would be too long for the file system with a long node name', async () => {
    const node = `${'n'.repeat(60)}.example.com`;
    const err = await reports.saveFile(E1, node, `${'x'.repeat(196)}.txt`, Buffer.from('x')).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('name');
  });

  it.each([['../n'], ['..'], ['a/b'], ['/etc'], ['Node'], ['']])('refuses the node name %j', async (node) => {
    await expect(reports.saveResult(E1, node, '{}')).rejects.toMatchObject({ field: 'node' });
    await expect(reports.saveFile(E1, node, 'f.txt', Buffer.from(''))).rejects.toMatchObject({
      field: 'node',
    });
    expect(await tree(parent)).toEqual([]);
  });

  it.each([['../20261129150000'], ['latest'], ['2026'], ['..'], ['/tmp']])(
    'refuses the execution id %j',
    async (executionId) => {
      await expect(reports.saveResult(executionId, 'n', '{}')).rejects.toMatchObject({
        field: 'executionID',
      });
      await expect(reports.markLatest(executionId)).rejects.toBeInstanceOf(ValidationError);
      expect(await tree(parent)).toEqual([]);
    },
  );
});
