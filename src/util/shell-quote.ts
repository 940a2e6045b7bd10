/** POSIX single-quoting for command templates: arguments with spaces or quotes survive the pool's command-line splitting. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
