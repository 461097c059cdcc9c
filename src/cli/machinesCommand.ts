// `leasehold machines [name]`: the machine definitions, for Stately's editor (json) or as diagrams
// (mermaid, dot). Needs no database.

import { Argument, type Command, Option } from 'commander';
import { machineCatalog, machineNames } from '../inspect/machineCatalog.ts';
import { toDot } from '../inspect/toDot.ts';
import { toJson } from '../inspect/toJson.ts';
import { toMermaid } from '../inspect/toMermaid.ts';

const FORMATS = ['mermaid', 'dot', 'json'] as const;
type Format = (typeof FORMATS)[number];

export function addMachinesCommand(program: Command): void {
  program
    .command('machines')
    .description('print the machine definitions: JSON for Stately’s editor, or a Mermaid or Graphviz diagram')
    .addArgument(new Argument('[name]', 'one machine (default: all)').choices(machineNames()))
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('mermaid'))
    .addHelpText(
      'after',
      `
Examples:
  leasehold machines job --format mermaid      # paste into a \`\`\`mermaid block
  leasehold machines driver --format dot | dot -Tsvg > driver.svg
  leasehold machines job --format json         # import into Stately's editor`,
    )
    .action((name: string | undefined, options: { format: Format }) => {
      process.stdout.write(renderMachines(name === undefined ? machineNames() : [name], options.format));
    });
}

/** Mermaid and dot draw several machines in one diagram; JSON is one config, or configs by name. */
export function renderMachines(names: readonly string[], format: Format): string {
  const machines = names.map((name) => {
    const machine = machineCatalog[name];
    if (!machine) throw new Error(`no machine named ${name}`);
    return { name, machine };
  });
  switch (format) {
    case 'mermaid':
      return toMermaid(machines.map((m) => m.machine));
    case 'dot':
      return toDot(machines.map((m) => m.machine));
    case 'json': {
      const json =
        machines.length === 1
          ? toJson(machines[0]!.machine)
          : Object.fromEntries(machines.map((m) => [m.name, toJson(m.machine)]));
      return `${JSON.stringify(json, null, 2)}\n`;
    }
  }
}
