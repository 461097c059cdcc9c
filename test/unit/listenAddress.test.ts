import { describe, expect, it } from 'vitest';
import { parseListenAddress, serveSettings } from '../../src/cli/settings.ts';
import { ValidationError } from '../../src/errors.ts';
import { isLoopbackAddress } from '../../src/http/localRequest.ts';

describe('--listen', () => {
  it('parses host:port, [ipv6]:port and :port (every interface)', () => {
    expect(parseListenAddress('127.0.0.1:6446')).toEqual({ host: '127.0.0.1', port: 6446 });
    expect(parseListenAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseListenAddress('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseListenAddress(':6446')).toEqual({ host: '0.0.0.0', port: 6446 });
  });

  it('refuses anything else with a message naming the flag and the source', () => {
    for (const bad of ['localhost', '6446', 'host:port', 'host:70000', '::1:80', 'a b:1', '']) {
      expect(() => parseListenAddress(bad), bad).toThrow(ValidationError);
    }
    expect(() => serveSettings({}, { LEASEHOLD_LISTEN: 'nope' })).toThrow(
      '--listen (env LEASEHOLD_LISTEN): "nope" must be host:port',
    );
  });

  it('defaults to the seed port on loopback; the flag beats the environment', () => {
    expect(serveSettings({}, {}).listen).toEqual({ host: '127.0.0.1', port: 6446 });
    expect(serveSettings({}, { LEASEHOLD_LISTEN: '0.0.0.0:7000' }).listen).toEqual({
      host: '0.0.0.0',
      port: 7000,
    });
    expect(serveSettings({ listen: '127.0.0.1:0' }, { LEASEHOLD_LISTEN: '0.0.0.0:7000' }).listen.port).toBe(
      0,
    );
  });
});

describe('loopback addresses (the API on loopback refuses foreign hosts; remote mode warns on plain HTTP elsewhere)', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])(
    '%s is loopback',
    (host) => {
      expect(isLoopbackAddress(host)).toBe(true);
    },
  );
  it.each(['0.0.0.0', '::', '10.0.0.1', 'example.com', 'localhost.example.com', '[::2]'])(
    '%s is not',
    (host) => {
      expect(isLoopbackAddress(host)).toBe(false);
    },
  );
});
