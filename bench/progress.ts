// The progress line on stderr: rewritten in place on a terminal, one line per step otherwise.

const startedAt = performance.now();

export function progress(message: string): void {
  const line = `[${((performance.now() - startedAt) / 1_000).toFixed(1).padStart(5)} s] ${message}`;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
  else process.stderr.write(`${line}\n`);
}

export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

export function elapsedSeconds(): number {
  return (performance.now() - startedAt) / 1_000;
}
