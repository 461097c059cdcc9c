// A throwaway PKI for TLS tests, made with the openssl CLI in a temp directory: a CA, a server
// certificate for localhost / 127.0.0.1, a client certificate it signed, and one from another CA;
// and an HTTPS client that presents them.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

export interface TestPki {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** Signed by a CA the server does not trust. */
  strangerCertFile: string;
  strangerKeyFile: string;
}

const CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function authority(dir: string, name: string): void {
  openssl(
    dir,
    ['req', '-x509', '-config', 'pki.cnf', '-extensions', 'ca', ...P256, '-keyout', `${name}.key`].concat([
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=leasehold test ${name}`,
    ]),
  );
}

function leaf(dir: string, name: string, ca: string, kind: 'server' | 'client', cn: string): void {
  openssl(dir, [
    'req',
    '-new',
    '-config',
    'pki.cnf',
    ...P256,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-extfile',
    'pki.cnf',
    '-extensions',
    kind,
    '-out',
    `${name}.pem`,
  ]);
}

/** Writes the PKI into `dir` (which must exist). */
export function createTestPki(dir: string): TestPki {
  writeFileSync(join(dir, 'pki.cnf'), CONFIG);
  authority(dir, 'ca');
  authority(dir, 'stranger-ca');
  leaf(dir, 'server', 'ca', 'server', 'localhost');
  leaf(dir, 'client', 'ca', 'client', 'remote-driver');
  leaf(dir, 'stranger', 'stranger-ca', 'client', 'stranger');
  const at = (file: string) => join(dir, file);
  return {
    caFile: at('ca.pem'),
    serverCertFile: at('server.pem'),
    serverKeyFile: at('server.key'),
    clientCertFile: at('client.pem'),
    clientKeyFile: at('client.key'),
    strangerCertFile: at('stranger.pem'),
    strangerKeyFile: at('stranger.key'),
  };
}

export interface TlsAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: inspected field by field.
  body: any;
}

/** One HTTPS request trusting `ca`, with a client certificate when given. */
export async function tlsCall(
  url: string,
  options: {
    ca: Buffer;
    cert?: Buffer;
    key?: Buffer;
    method?: string;
    headers?: Record<string, string>;
    body?: unknown;
  },
): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca: options.ca,
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        headers: { ...(options.body ? { 'content-type': 'application/json' } : {}), ...options.headers },
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // plain text
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body ? JSON.stringify(options.body) : undefined);
  });
}
