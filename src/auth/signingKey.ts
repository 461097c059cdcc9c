// The key that signs access tokens: an Ed25519 private key in a PKCS#8 PEM file, generated into
// the data directory on first start or named by --token-signing-key-file. Read once at start.

import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import type { Logger } from 'pino';
import { ValidationError } from '../errors.ts';

export interface SigningKey {
  privateKey: KeyObject;
  /** Verifies tokens; can be handed to other services without the power to mint. */
  publicKey: KeyObject;
  /** The RFC 7638 thumbprint of the public key, the `kid` of every token: tells keys apart after a rotation. */
  keyId: string;
}

export interface SigningKeySource {
  file: string;
  /** Generate the file when it does not exist (the default path); a path the user gave must exist. */
  createIfMissing: boolean;
}

const FLAG = '--token-signing-key-file';

/** Reads the key, generating it first when allowed and missing. */
export async function loadSigningKey(source: SigningKeySource, log: Logger): Promise<SigningKey> {
  let pem = await readFile(source.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' && source.createIfMissing) return undefined;
    throw new ValidationError(FLAG, `${FLAG}: cannot read "${source.file}": ${err.code ?? err.message}`, {
      cause: err,
    });
  });
  if (pem === undefined) {
    pem = await createKeyFile(source.file).catch((err: NodeJS.ErrnoException) => {
      throw new ValidationError(
        FLAG,
        `${FLAG} (default): cannot create "${source.file}": ${err.code ?? err.message}; choose another --data-dir or give ${FLAG}`,
        { cause: err },
      );
    });
    log.info({ file: source.file }, 'generated the access-token signing key');
  }
  const mode = (await stat(source.file)).mode;
  if ((mode & 0o077) !== 0) {
    log.warn(
      { file: source.file, mode: (mode & 0o777).toString(8) },
      'the access-token signing key is readable by other users, who could mint tokens: chmod 600 it',
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw notEd25519(source, `it is not a PEM private key (${(err as Error).message})`, err);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw notEd25519(source, `it is a ${privateKey.asymmetricKeyType ?? 'secret'} key`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: await calculateJwkThumbprint(await exportJWK(publicKey)) };
}

function notEd25519(source: SigningKeySource, why: string, cause?: unknown): ValidationError {
  const remedy = source.createIfMissing
    ? 'remove it to have a new one generated (tokens signed with the old key then stop working)'
    : 'create one with: openssl genpkey -algorithm ed25519 -out <file>';
  return new ValidationError(
    FLAG,
    `${FLAG}: "${source.file}" must hold an Ed25519 private key in PKCS#8 PEM, but ${why}; ${remedy}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Writes a new key to a temporary file and links it into place: a link never replaces an existing
 * file, so two daemons starting on one data directory end up with the same key, and a reader
 * never sees a half-written file. Returns the PEM that is in place.
 */
async function createKeyFile(file: string): Promise<string> {
  // Only the key's own directory is private: ancestors get the usual mode, as the embedded
  // PostgreSQL (running as `postgres` under root) must pass through them to the data directory.
  await mkdir(dirname(dirname(file)), { recursive: true });
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const temporary = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, pem, { mode: 0o600 });
  try {
    await link(temporary, file);
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return await readFile(file, 'utf8');
  } finally {
    await unlink(temporary);
  }
}
