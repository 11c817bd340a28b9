import type { Json, NodeValue } from '../../json.js';
import { Controller } from '../../controller/shell/controller.js';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { CacheCatalog, CacheEntryKind, CacheLookupResult } from '../../ports/cache-catalog.js';
import type { Clock } from '../../ports/clock.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';
import { InlineDispatcher, type InlineTask } from '../../testing/inline-dispatcher.js';
import { planWorkflow } from '../plan-workflow.js';
import type { WorkflowPlan } from '../workflow-plan.js';

/** A clock the test moves (TTL expiry without sleeping). */
export class ManualClock implements Clock {
  private current = new Date('2026-01-01T00:00:00.000Z');
  now(): Date {
    return new Date(this.current.getTime());
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export interface PlanAndRunOptions {
  project?: string;
  domain?: string;
  overwriteCache?: boolean;
}

/**
 * One in-memory memoflow for the planner's tests: a catalog, a run store, a controller running
 * tasks inline. `plan` plans against the same catalog and records every catalog call it made, so
 * a test can check that planning only read.
 */
export class PlanWorld {
  readonly clock = new ManualClock();
  readonly catalog = new InMemoryCacheCatalog({ clock: this.clock });
  readonly runStore = new InMemoryRunStore({ clock: this.clock });
  readonly dispatcher: InlineDispatcher;
  readonly controller: Controller;
  /** The catalog calls the last `plan` made: `lookup:<kind>:<keys>` for reads, the method's name for anything else. */
  planCalls: string[] = [];

  constructor(tasks: { [task: string]: InlineTask }, hash?: (output: Json, attempt: TaskAttempt) => string | null) {
    this.dispatcher = new InlineDispatcher(tasks, hash === undefined ? {} : { hash });
    this.controller = new Controller({ catalog: this.catalog, runStore: this.runStore, dispatcher: this.dispatcher, clock: this.clock });
  }

  async run(spec: WorkflowSpec, inputs: { [name: string]: NodeValue }, options: PlanAndRunOptions = {}): Promise<RunState> {
    const id = await this.controller.submit({ spec, inputs, project: options.project ?? 'p', domain: options.domain ?? 'd', options: { overwriteCache: options.overwriteCache ?? false } });
    return this.controller.wait(id);
  }

  async plan(spec: WorkflowSpec, inputs: { [name: string]: NodeValue }, options: PlanAndRunOptions = {}): Promise<WorkflowPlan> {
    this.planCalls = [];
    return planWorkflow(
      { spec, inputs, project: options.project ?? 'p', domain: options.domain ?? 'd', overwriteCache: options.overwriteCache ?? false, now: this.clock.now() },
      this.recordingCatalog(),
    );
  }

  async close(): Promise<void> {
    await this.controller.close();
    await this.dispatcher.close();
  }

  /** The catalog with every method recorded: the planner is handed all of it, and may only look up. */
  private recordingCatalog(): CacheCatalog {
    const catalog = this.catalog;
    const calls = this.planCalls;
    return new Proxy(catalog, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'lookup') {
            const [kind, keys] = args as [CacheEntryKind, string[]];
            calls.push(`lookup:${kind}:${keys.length}`);
            return (value as (k: CacheEntryKind, keys: string[]) => Promise<CacheLookupResult>).call(target, kind, keys);
          }
          calls.push(String(property));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
}
