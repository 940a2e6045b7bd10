/**
 * `quillman token`: mints a conversation token, for trying tokens out and
 * for backends that would rather run this than sign their own (the format is
 * in docs/security.md).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { mintToken } from '../gateway/access/tokens.js';
import { numberOption } from './options.js';

interface TokenFlags {
  secret?: string;
  ttl: number;
  maxSeconds?: number;
  sub?: string;
  origin?: string;
}

export function registerTokenCommand(program: Command): void {
  program
    .command('token')
    .description('print a signed conversation token for a gateway started with --token-secret')
    .option('--secret <secret>', 'the signing secret [env QUILLMAN_TOKEN_SECRET; its first entry]')
    .option('--ttl <s>', 'seconds until the token expires (a conversation must start by then)', numberOption, 300)
    .option('--max-seconds <s>', 'cap the conversation at this length', numberOption)
    .option('--sub <who>', 'who the token is for (shown in the gateway log)')
    .option('--origin <origin>', 'the only web origin the token works from, e.g. https://app.example.com')
    .action((flags: TokenFlags) => {
      const secret = flags.secret ?? process.env.QUILLMAN_TOKEN_SECRET?.split(',')[0]?.trim();
      if (!secret) throw new InvalidArgumentError('give the secret with --secret or QUILLMAN_TOKEN_SECRET');
      if (secret.length < 32) throw new InvalidArgumentError('the secret needs at least 32 characters (e.g. `openssl rand -hex 32`)');
      const token = mintToken(secret, { ttlSeconds: Math.round(flags.ttl), maxSeconds: flags.maxSeconds, sub: flags.sub, origin: flags.origin });
      process.stdout.write(`${token}\n`);
    });
}
