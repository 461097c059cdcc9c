// History settings at the edge: --history-expiration and --history-loki-url from flag, env and the
// INI file (history_expiration, history_loki_url), with messages naming the key and the file.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { historySettings, serveSettings } from '../../src/cli/settings.ts';
import { ValidationError } from '../../src/errors.ts';
import { historyQuery } from '../../src/history/lokiHistoryReader.ts';
import { parseLogQL } from '../support/fakeLoki.ts';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-history-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function iniFile(text: string): string {
  const path = join(dir, `operator-${files++}.ini`);
  writeFileSync(path, text);
  return path;
}

describe('history settings', () => {
  it('reads history_expiration and history_loki_url from [operator]', () => {
    const config = iniFile('[operator]\nhistory_expiration = 720h\nhistory_loki_url = http://loki:3100\n');
    const settings = serveSettings({ config }, {});
    expect(settings.historyExpirationMs).toBe(30 * 86_400_000);
    expect(settings.historyLokiUrl?.href).toBe('http://loki:3100/');
    expect(historySettings({ config }, {}).historyLokiUrl?.href).toBe('http://loki:3100/');
  });

  it('takes the flag over the environment over the file', () => {
    const config = iniFile('[operator]\nhistory_loki_url = http://from-file:3100\n');
    const env = { LEASEHOLD_HISTORY_LOKI_URL: 'http://from-env:3100' };
    expect(serveSettings({ config }, env).historyLokiUrl?.host).toBe('from-env:3100');
    expect(serveSettings({ config, historyLokiUrl: 'http://from-flag:3100' }, env).historyLokiUrl?.host).toBe(
      'from-flag:3100',
    );
    expect(serveSettings({}, {}).historyLokiUrl).toBeUndefined();
    expect(serveSettings({}, {}).historyExpirationMs).toBe(0);
  });

  it('refuses a URL that is not http(s), naming the key and the file line', () => {
    const config = iniFile('[operator]\nhistory_loki_url = loki:3100\n');
    expect(() => serveSettings({ config }, {})).toThrow(ValidationError);
    expect(() => serveSettings({ config }, {})).toThrow(
      `${config}:2: [operator] history_loki_url: "loki:3100"`,
    );
    expect(() => serveSettings({ historyLokiUrl: 'http://loki:3100/?x=1' }, {})).toThrow(
      /--history-loki-url \(flag\): must be a base URL/,
    );
  });

  it('refuses a history expiration that is not a duration or longer than ten years', () => {
    expect(() => serveSettings({ historyExpiration: '30' }, {})).toThrow(/--history-expiration \(flag\)/);
    expect(() => serveSettings({}, { LEASEHOLD_HISTORY_EXPIRATION: '4000d' })).toThrow(
      /--history-expiration \(env LEASEHOLD_HISTORY_EXPIRATION\): "4000d" is longer than/,
    );
  });
});

describe('history LogQL', () => {
  it('quotes any filter value so that Loki reads back exactly the text asked for', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (namespace, name, label) => {
        const parsed = parseLogQL(historyQuery({ namespace, name, labels: { [label]: 'v' } }));
        expect(parsed.matchers).toEqual([
          { name: 'from', op: '=', value: 'job-history' },
          { name: 'namespace', op: '=', value: namespace },
        ]);
        expect(parsed.filters.map((f) => f.text)).toEqual([
          `"name":${JSON.stringify(name)}`,
          `${JSON.stringify(label)}:"v"`,
        ]);
      }),
    );
  });
});
