// Every error code in src/errors.ts is documented in the README's errors table, and the table
// names no code that does not exist.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/errors.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function codesInCatalog(): Map<string, string> {
  const codes = new Map<string, string>();
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || !(value.prototype instanceof errors.LeaseholdError)) continue;
    // Every constructor takes strings (or nothing) first; the code is a field of the instance.
    const instance = Reflect.construct(value, ['x', 'x', 'x']) as errors.LeaseholdError;
    codes.set(instance.code, name);
  }
  return codes;
}

describe('error catalog', () => {
  const catalog = codesInCatalog();

  it('finds the error classes', () => {
    expect(catalog.size).toBeGreaterThanOrEqual(9);
  });

  it('documents every code with its class in the README errors table', () => {
    for (const [code, name] of catalog) {
      expect(readme, `README lacks a row for ${code}`).toMatch(
        new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*\`${name}\`\\s*\\|`),
      );
    }
  });

  it('documents no code that does not exist', () => {
    const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('## Architecture'));
    const documented = [...section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...catalog.keys()].sort());
  });
});
