import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { MemoflowError } from '@memoflow/engine';
import { uiRoutes } from './routes.js';
import type { UiSource } from './source.js';

export const DEFAULT_UI_PORT = 4545;
export const DEFAULT_UI_HOST = '127.0.0.1';
/** How long close() lets live streams finish before it cuts their connections. */
const CLOSE_GRACE_MS = 2_000;

export interface UiServerOptions {
  source: UiSource;
  /** 0 picks a free port. Default 4545. */
  port?: number;
  /** The address to listen on: loopback unless told otherwise (the page shows every run and value). */
  host?: string;
  liveIntervalMs?: number;
}

export interface UiServer {
  /** Where the page is, e.g. `http://127.0.0.1:4545/`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and ends open live streams. */
  close(): Promise<void>;
}

/**
 * Names a browser may send in `Host` for the address the server listens on. On every address
 * (`0.0.0.0`, `::`) the names it is reached by are unknown, so any is accepted: the user chose to
 * expose it; the check guards the loopback default against DNS rebinding.
 */
function allowedHosts(host: string): Set<string> | 'any' {
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return 'any';
  const hosts = new Set(['127.0.0.1', 'localhost', '[::1]']);
  hosts.add(host.includes(':') && !host.startsWith('[') ? `[${host.toLowerCase()}]` : host.toLowerCase());
  return hosts;
}

/** Serves the read-only web UI over `source`. Resolves once it is listening. */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const host = options.host ?? DEFAULT_UI_HOST;
  const port = options.port ?? DEFAULT_UI_PORT;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new MemoflowError('INVALID_OPTION', `the UI port must be an integer from 0 to 65535, got ${String(port)}`, { field: 'port' });
  }
  const closing = new AbortController();
  const app = uiRoutes(options.source, { allowedHosts: allowedHosts(host), closing: closing.signal, ...(options.liveIntervalMs === undefined ? {} : { liveIntervalMs: options.liveIntervalMs }) });
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(started)) as Server;
    started.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new MemoflowError('INVALID_OPTION', `port ${port} on ${host} is in use: pick another with --port`, { field: 'port' })
          : new MemoflowError('INVALID_OPTION', `the UI cannot listen on ${host}:${port}: ${error.message}`, { field: 'host' }),
      );
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}/`,
    port: address.port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        // Live streams send their run's last state and end; idle keep-alive connections are shut
        // as they become idle, and whatever is still open after CLOSE_GRACE_MS is cut.
        closing.abort();
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
