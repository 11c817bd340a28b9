/**
 * A TCP proxy in front of a Postgres URL that can be partitioned: `partition()` keeps every socket
 * open but forwards nothing more, in either direction. That is a network partition as a client
 * sees it (nothing answered, nothing closed): a query in flight then never settles, which is what
 * a stopped server (connections refused, sockets closed) cannot show.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface PartitionProxy {
  /** `target` with the proxy's host and port. */
  readonly url: string;
  partition(): void;
  /** Bytes clients sent since the partition, never forwarded: above 0 once a query is in flight for ever. */
  droppedBytes(): number;
  /** Statements that committed while their reply was dropped (`dropReplyTo`). */
  ambiguousCommits(): number;
  close(): Promise<void>;
}

export interface PartitionProxyOptions {
  /** A client connection that sends a chunk containing this text is closed at once, both ways (a backend terminated mid-query). */
  readonly killConnectionsSending?: string;
  /**
   * The first statement whose text contains this runs (and commits), but its connection is closed
   * before the client reads the reply: the client sees the connection drop, not the commit (an
   * ambiguous commit). `ambiguousCommits()` counts them.
   */
  readonly dropReplyTo?: string;
}

/** Postgres's ReadyForQuery message ('Z', length 5): sent once a statement is done, after its commit. */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);

export async function startPartitionProxy(target: string, options: PartitionProxyOptions = {}): Promise<PartitionProxy> {
  const upstreamUrl = new URL(target);
  const sockets = new Set<Socket>();
  let partitioned = false;
  let dropped = 0;
  let ambiguous = 0;
  let dropArmed = options.dropReplyTo !== undefined;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(upstreamUrl.port || 5432), upstreamUrl.hostname);
    sockets.add(client).add(upstream);
    let dropNextReply = false;
    client.on('data', (chunk: Buffer) => {
      if (options.killConnectionsSending !== undefined && chunk.includes(options.killConnectionsSending)) {
        client.destroy();
        upstream.destroy();
        return;
      }
      if (dropArmed && options.dropReplyTo !== undefined && chunk.includes(options.dropReplyTo)) {
        dropArmed = false;
        dropNextReply = true;
      }
      if (partitioned) dropped += chunk.length;
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (dropNextReply) {
        // Passed on until the statement is done (committed): then the connection goes, its reply unread.
        if (!chunk.includes(READY_FOR_QUERY)) {
          if (!partitioned) client.write(chunk);
          return;
        }
        dropNextReply = false;
        ambiguous += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      if (!partitioned) client.write(chunk);
    });
    const end = () => {
      if (partitioned) return; // a partition closes nothing
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', () => undefined);
    upstream.on('close', end).on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.href,
    partition: () => {
      partitioned = true;
    },
    droppedBytes: () => dropped,
    ambiguousCommits: () => ambiguous,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
