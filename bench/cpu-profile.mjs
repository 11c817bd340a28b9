// The V8 CPU profiler around chosen parts of a bench only (`--profile`): bench/run.mjs and
// bench/large-dag.mjs write bench/profiles/<name>.cpuprofile; bench/profile-summary.mjs reads them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/**
 * A `profiled(name, body)` that runs `body`, profiling it into bench/profiles/<name>.cpuprofile
 * when `enabled` (sampling every `intervalUs` microseconds), else just running it.
 */
export function cpuProfiler(enabled, { intervalUs = 100 } = {}) {
  let inspector;
  return async function profiled(name, body) {
    if (!enabled) return body();
    if (inspector === undefined) {
      inspector = new Session();
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.setSamplingInterval', { interval: intervalUs });
    }
    await inspector.post('Profiler.start');
    try {
      return await body();
    } finally {
      const { profile } = await inspector.post('Profiler.stop');
      const dir = new URL('./profiles/', import.meta.url);
      mkdirSync(dir, { recursive: true });
      writeFileSync(new URL(`${name.replace(/[^\w.-]+/g, '-')}.cpuprofile`, dir), JSON.stringify(profile));
    }
  };
}
