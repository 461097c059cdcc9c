// The kubeconfig the fake writes for the code under test: its URL, the bearer token it checks, and
// (with TLS) the CA that signed its certificate — the same file a real cluster hands out.

import { writeFile } from 'node:fs/promises';
import { generate } from 'selfsigned';
import { stringify } from 'yaml';

export interface ServingCertificate {
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 and localhost that is its own CA (EC: quick to make). */
export async function servingCertificate(): Promise<ServingCertificate> {
  const pems = await generate([{ name: 'commonName', value: 'fake-kube' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export async function writeKubeconfig(
  path: string,
  options: { server: string; token: string; namespace: string; caCert?: string | undefined },
): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'fake-kube',
        cluster: {
          server: options.server,
          ...(options.caCert
            ? { 'certificate-authority-data': Buffer.from(options.caCert).toString('base64') }
            : { 'insecure-skip-tls-verify': true }),
        },
      },
    ],
    users: [{ name: 'fake-kube', user: { token: options.token } }],
    contexts: [
      {
        name: 'fake-kube',
        context: { cluster: 'fake-kube', user: 'fake-kube', namespace: options.namespace },
      },
    ],
    'current-context': 'fake-kube',
  };
  await writeFile(path, stringify(config), { mode: 0o600 });
}
