import type { Memoflow } from '../client/connect.js';
import { uiSourceOf } from './client-source.js';
import { startUiServer, type UiServer } from './server.js';

export interface ServeUiOptions {
  /** Default 4545; 0 picks a free port (see `UiServer.url`). */
  port?: number;
  /** Default 127.0.0.1: the page shows every run and value, so loopback unless you mean otherwise. */
  host?: string;
  /** How often live pages re-read a running run (default 400 ms). */
  liveIntervalMs?: number;
}

/**
 * Serves the read-only web UI (`memoflow ui`) over a connection, from this process: the way to
 * watch runs of an embedded data directory, which one process holds at a time.
 */
export function serveUi(mf: Memoflow, options: ServeUiOptions = {}): Promise<UiServer> {
  return startUiServer({ source: uiSourceOf(mf), ...options });
}
