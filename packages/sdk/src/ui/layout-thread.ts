import { Worker } from 'node:worker_threads';
import type { ElkNode } from 'elkjs/lib/elk.bundled.js';

/** A layout that takes longer than this fails (the thread is restarted), so a page asking for it gets an answer. */
export const LAYOUT_TIMEOUT_MS = 120_000;

interface Pending {
  resolve(graph: ElkNode): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

let thread: Worker | undefined;
const pending = new Map<number, Pending>();
let nextId = 0;

function failAll(error: Error): void {
  for (const request of pending.values()) {
    clearTimeout(request.timer);
    request.reject(error);
  }
  pending.clear();
}

function start(): Worker {
  const worker = new Worker(new URL('./elk-thread.mjs', import.meta.url));
  // Idle, it must not keep a CLI process alive.
  worker.unref();
  worker.on('message', (message: { id: number; graph?: ElkNode; error?: string }) => {
    const request = pending.get(message.id);
    if (request === undefined) return;
    pending.delete(message.id);
    clearTimeout(request.timer);
    if (message.graph !== undefined) request.resolve(message.graph);
    else request.reject(new Error(`laying out the graph failed: ${message.error ?? 'no reason given'}`));
  });
  worker.on('error', (error) => {
    if (thread === worker) thread = undefined;
    failAll(new Error(`the layout thread failed: ${error.message}`));
  });
  worker.on('exit', () => {
    if (thread === worker) thread = undefined;
  });
  return worker;
}

/** Lays `graph` out with ELK in a worker thread, so the caller's event loop stays free. */
export function layoutInThread(graph: ElkNode): Promise<ElkNode> {
  thread ??= start();
  const worker = thread;
  const id = nextId++;
  return new Promise<ElkNode>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`laying out ${graph.children?.length ?? 0} nodes took over ${LAYOUT_TIMEOUT_MS / 1000} s: close some containers`));
      // A layout past its deadline is stuck in ELK: the thread is replaced, others' requests fail with it.
      if (thread === worker) thread = undefined;
      void worker.terminate();
    }, LAYOUT_TIMEOUT_MS);
    timer.unref();
    pending.set(id, { resolve, reject, timer });
    worker.ref();
    worker.postMessage({ id, graph });
  }).finally(() => {
    if (pending.size === 0) worker.unref();
  });
}
