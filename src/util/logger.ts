/** One logger for every process. Pretty on a terminal, JSON lines otherwise (for log shippers). */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.QUILLMAN_LOG_LEVEL ?? 'info'): Logger {
  const pretty = process.env.QUILLMAN_LOG_FORMAT === 'pretty' || (process.env.QUILLMAN_LOG_FORMAT !== 'json' && process.stderr.isTTY);
  return pino(
    { name, level },
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } })
      : pino.destination(2),
  );
}

/** For tests and library use: a logger that writes nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
