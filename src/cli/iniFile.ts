// The INI dialect of `--config` files (Grafana's operator.ini): `[section]` headers, `key = value`
// lines, `#` and `;` comment lines. Syntax only; which keys exist is configFile.ts's business.

import { ValidationError } from '../errors.ts';

export interface IniSection {
  name: string;
  line: number;
}

export interface IniFile {
  /** Every `[section]` header, in order (a name may repeat; its keys then add up). */
  sections: IniSection[];
  entries: IniEntry[];
}

export interface IniEntry {
  section: string;
  key: string;
  /** Unquoted and trimmed. */
  value: string;
  /** 1-based, for messages: `operator.ini:7`. */
  line: number;
}

const SECTION = /^\[\s*([A-Za-z0-9_.-]+)\s*\]$/;
const KEY = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `text` read from `file` (named in messages as given). A value may be quoted with `"` or
 * `'` to keep surrounding spaces or a leading `#`/`;`. There are no inline comments: `#` and `;`
 * only start a comment at the beginning of a line, so tokens and URLs keep them. A key set twice
 * in one section is an error rather than a silent override.
 */
export function parseIni(text: string, file: string): IniFile {
  const sections: IniSection[] = [];
  const entries: IniEntry[] = [];
  const firstLine = new Map<string, number>();
  let section: string | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    const content = raw.trim();
    if (content === '' || content.startsWith('#') || content.startsWith(';')) continue;
    if (content.startsWith('[')) {
      const match = SECTION.exec(content);
      if (!match?.[1]) throw syntaxError(file, line, `malformed section header ${content}; write [name]`);
      section = match[1];
      sections.push({ name: section, line });
      continue;
    }
    const eq = content.indexOf('=');
    if (eq < 0)
      throw syntaxError(file, line, `expected key = value or [section], got ${JSON.stringify(content)}`);
    const key = content.slice(0, eq).trim();
    if (!KEY.test(key)) throw syntaxError(file, line, `malformed key ${JSON.stringify(key)}`);
    if (section === undefined) {
      throw syntaxError(file, line, `${key} is outside any section; put it under [operator]`);
    }
    const id = `[${section}] ${key}`;
    const first = firstLine.get(id);
    if (first !== undefined) throw syntaxError(file, line, `${id} is set twice (first on line ${first})`);
    firstLine.set(id, line);
    let value = content.slice(eq + 1).trim();
    const quote = value[0];
    if (quote === '"' || quote === "'") {
      if (value.length < 2 || !value.endsWith(quote)) {
        throw syntaxError(file, line, `${id}: unterminated quoted value ${value}`);
      }
      value = value.slice(1, -1);
    }
    entries.push({ section, key, value, line });
  }
  return { sections, entries };
}

function syntaxError(file: string, line: number, message: string): ValidationError {
  return new ValidationError('--config', `${file}:${line}: ${message}`);
}
