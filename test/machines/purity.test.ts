// Machines are pure definitions: their files import only xstate and each other.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../machines/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

describe('machines/', () => {
  it('has the job and driver machines', () => {
    expect(files).toEqual(expect.arrayContaining(['job.machine.ts', 'driver.machine.ts']));
  });

  it.each(files)('%s imports only xstate and sibling machine files', (file) => {
    const source = readFileSync(new URL(file, dir), 'utf8');
    const specifiers = [...source.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map(
      (m) => m[1],
    );
    for (const specifier of specifiers) {
      expect(
        specifier === 'xstate' || /^\.\/[\w.]+\.ts$/.test(specifier ?? ''),
        `${file} imports ${specifier}`,
      ).toBe(true);
    }
  });

  it.each(files)('%s uses no clock, randomness or I/O', (file) => {
    const source = readFileSync(new URL(file, dir), 'utf8');
    expect(source).not.toMatch(/Date\.now|Math\.random|process\.|console\.|setTimeout|fetch\(/);
  });
});
