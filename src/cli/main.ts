#!/usr/bin/env node
import { Command } from 'commander';
import { registerChatCommand } from './chat-command.js';
import { registerModelsCommand } from './models-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerTokenCommand } from './token-command.js';
import { registerWorkerCommand } from './worker-command.js';

const program = new Command()
  .name('quillman')
  .description('QuiLLMan: self-hostable, full-duplex voice chat over the Moshi protocol')
  .showHelpAfterError();

registerServeCommand(program);
registerWorkerCommand(program);
registerChatCommand(program);
registerModelsCommand(program);
registerTokenCommand(program);

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`quillman: ${err.message}\n`);
  process.exit(1);
});
