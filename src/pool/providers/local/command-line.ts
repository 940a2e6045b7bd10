/**
 * Worker command templates, e.g. `python -m moshi.server --port {port}`.
 *
 * The template is split into arguments the way a POSIX shell splits words
 * (whitespace, '…', "…", backslash escapes) and run without a shell. A shell
 * would sit between the pool and the worker: signals meant for the worker
 * would reach `sh`, and a crashed `sh` could leave the real worker running
 * and holding its port and GPU. Pipes, `$VARS` and globs are therefore not
 * supported; settings go in `pool.local.env`, and anyone who really needs a
 * shell can write `sh -c "exec …"` themselves.
 */

/** Values that may appear in a template as `{name}`. */
export const COMMAND_PLACEHOLDERS = ['port', 'host'] as const;
export type CommandPlaceholder = (typeof COMMAND_PLACEHOLDERS)[number];

export class CommandTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandTemplateError';
  }
}

/** Splits a command line into arguments like `sh` would, without expanding anything. */
export function splitCommand(template: string): string[] {
  const args: string[] = [];
  let current = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < template.length && '"\\$`'.includes(template[i + 1])) current += template[++i];
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < template.length) current += template[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) throw new CommandTemplateError(`the command has an unmatched ${quote} quote: ${template}`);
  if (inWord) args.push(current);
  if (args.length === 0) throw new CommandTemplateError('the command is empty');
  return args;
}

/** `{word}` placeholders in a template that this pool does not fill in. */
export function unknownPlaceholders(template: string): string[] {
  const known = new Set<string>(COMMAND_PLACEHOLDERS);
  return [...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]).filter((name) => !known.has(name));
}

/** Fills placeholders in each argument; done after splitting so a value can never create extra arguments. */
export function renderCommand(args: readonly string[], values: Record<CommandPlaceholder, string>): string[] {
  return args.map((arg) => arg.replace(/\{(port|host)\}/g, (_, name: CommandPlaceholder) => values[name]));
}
