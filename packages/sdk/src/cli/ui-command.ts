import { Option, type Command } from 'commander';
import { MemoflowError } from '@memoflow/engine';
import type { Memoflow } from '../client/connect.js';
import { serveUi } from '../ui/serve-ui.js';
import { DEFAULT_UI_HOST, DEFAULT_UI_PORT, type UiServer } from '../ui/server.js';
import { integerFlag } from './flag-parsers.js';
import type { StorageFlags } from './main.js';

const portFlag = integerFlag({ min: 0, max: 65_535, what: 'a port number (0 picks a free one)' });

/**
 * `memoflow ui`: serves the read-only web page of runs over the store the flags name, until
 * SIGINT/SIGTERM. With Postgres it reads the shared store while controllers run elsewhere; in the
 * embedded mode it needs the data directory to itself (PGlite: one process), so it shows past runs
 * and `memoflow run --ui` shows a run while it runs.
 */
export function addUiCommand(program: Command, withStorage: (command: Command) => Command, openReadOnly: (flags: StorageFlags) => Promise<Memoflow>): void {
  withStorage(
    program
      .command('ui')
      .description('serve a read-only web page of runs, their DAGs (live while they run), nodes and cache entries')
      .addOption(new Option('--port <n>', 'port to listen on (0 picks a free one)').argParser(portFlag).default(DEFAULT_UI_PORT))
      .addOption(new Option('--host <address>', 'address to listen on (the page shows every run and value: loopback unless you mean it)').default(DEFAULT_UI_HOST)),
  ).action(async (flags: StorageFlags & { port: number; host: string }) => {
    const mf = await openReadOnly(flags).catch((error: unknown) => {
      if (error instanceof MemoflowError && error.code === 'DATA_DIR_LOCKED') {
        throw new MemoflowError('DATA_DIR_LOCKED', `${error.message}; the embedded store serves one process at a time: to watch a run while it runs, start it with memoflow run ... --ui`, { field: 'dataDir', cause: error });
      }
      throw error;
    });
    try {
      const server = await serveUi(mf, { port: flags.port, host: flags.host });
      announce(server, flags.json === true, 'Ctrl-C stops it', process.stdout);
      await untilSignal();
      await server.close();
    } finally {
      await mf.close();
    }
  });
}

/** `memoflow run --ui[=port]`: the same page served by the running process, closed when the run is reported. */
export async function startRunUi(mf: Memoflow, port: true | number, json: boolean): Promise<UiServer> {
  const server = await serveUi(mf, { port: port === true ? DEFAULT_UI_PORT : port });
  // Standard error: `run` reports the run on standard output (one JSON document with --json).
  announce(server, json, 'it stops when the run ends', process.stderr);
  return server;
}

/** `--ui` or `--ui <port>`. */
export function uiPortFlag(value: string): number {
  return portFlag(value);
}

function announce(server: UiServer, json: boolean, until: string, stream: NodeJS.WritableStream): void {
  stream.write(json ? `${JSON.stringify({ ui: server.url })}\n` : `memoflow ui: ${server.url} (read-only; ${until})\n`);
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
