// A progress line for `enqueue --wait`: a redrawn bar on a terminal, plain lines otherwise.

export class ProgressBar {
  #last = '';
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  update(state: string, progress: number, message: string): void {
    const pct = Math.max(0, Math.min(100, Math.round(progress)));
    if (this.#tty) {
      const width = 24;
      const filled = Math.round((pct / 100) * width);
      const columns = this.#stream.columns ?? 100;
      const text = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${state.padEnd(8)} ${message.split('\n')[0] ?? ''}`;
      this.#stream.write(`\r\x1b[2K${text.slice(0, columns - 1)}`);
      return;
    }
    const line = `${state} ${pct}% ${message.split('\n')[0] ?? ''}`.trimEnd();
    if (line !== this.#last) this.#stream.write(`${line}\n`);
    this.#last = line;
  }

  done(): void {
    if (this.#tty) this.#stream.write('\n');
  }
}
