/**
 * The fuzz suite's API half (issue 8, item 16): generated bad run inputs, definitions and task
 * behaviours through the public SDK, on one embedded connection. Creating a PGlite database takes
 * seconds (over ten on a loaded machine), so every property shares this file's connection; each
 * kind of case lives in its own module. Seeds: see fuzz-settings.ts.
 */
import { describe } from 'vitest';
import { useEmbedded } from '../support/modes.js';
import { fuzzRunInputs } from './run-inputs.fuzz.js';
import { fuzzTaskDefinitions } from './task-definitions.fuzz.js';
import { fuzzTaskBehaviours } from './task-behaviours.fuzz.js';
import { fuzzWorkflowDefinitions } from './workflow-definitions.fuzz.js';

describe('fuzz: the SDK, embedded, one connection', () => {
  // A short grace: bodies that ignore their timeout's abort are abandoned fast (the default 10 s per attempt would exceed the per-case bound).
  const t = useEmbedded({ connect: { timeoutGraceMs: 200 } });
  describe('bad run inputs', () => fuzzRunInputs(t));
  describe('bad task and dynamic definitions', () => fuzzTaskDefinitions(t));
  describe('bad workflow definitions', () => fuzzWorkflowDefinitions(t));
  describe('task behaviours', () => fuzzTaskBehaviours(t));
});
