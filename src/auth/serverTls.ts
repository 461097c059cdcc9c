// HTTPS for the API: --tls-cert-file and --tls-key-file make `serve` speak TLS; --tls-ca-file
// also makes it demand a client certificate signed by that CA (mutual TLS). Read once at start.

import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ValidationError } from '../errors.ts';

/** The paths, as settings hold them (ServeSettings.tls). */
export interface TlsFiles {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
}

/** What node:https needs, ready to hand to fastify's `https` option. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** When set, clients must present a certificate that chains to it. */
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: 'TLSv1.2';
}

function read(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ValidationError(flag, `${flag}: cannot read "${path}": ${code}`, { cause: err });
  }
}

/** Undefined without a certificate (plain HTTP). Errors name the flag at fault. */
export function loadServerTls(files: TlsFiles): ServerTls | undefined {
  if (files.certFile === undefined || files.keyFile === undefined) {
    if (files.caFile !== undefined) {
      throw new ValidationError(
        '--tls-ca-file',
        '--tls-ca-file: asking for client certificates needs HTTPS; give --tls-cert-file and --tls-key-file too',
      );
    }
    return undefined;
  }
  const cert = read(files.certFile, '--tls-cert-file');
  const key = read(files.keyFile, '--tls-key-file');
  const ca = files.caFile === undefined ? undefined : read(files.caFile, '--tls-ca-file');
  // Built once here so that a wrong PEM or a key of another certificate stops start-up with a
  // message naming the flags, not later inside the server.
  const context: SecureContextOptions = { cert, key, ...(ca ? { ca } : {}) };
  try {
    createSecureContext(context);
  } catch (err) {
    throw new ValidationError(
      '--tls-cert-file',
      `--tls-cert-file, --tls-key-file${ca ? ', --tls-ca-file' : ''}: not a usable certificate, key${ca ? ' and CA' : ''} (${(err as Error).message})`,
      { cause: err },
    );
  }
  return {
    cert,
    key,
    ...(ca ? { ca } : {}),
    requestCert: ca !== undefined,
    rejectUnauthorized: ca !== undefined,
    minVersion: 'TLSv1.2',
  };
}
