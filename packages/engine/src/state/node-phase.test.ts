import { describe, expect, test } from 'vitest';
import { MemoflowError } from '../errors.js';
import { hasOutput, isTerminal, NODE_PHASES, transition, type NodePhase } from './node-phase.js';

describe('node phases', () => {
  test('terminal phases and phases with an output', () => {
    expect(NODE_PHASES.filter(isTerminal)).toEqual(['succeeded', 'failed', 'aborted', 'cancelled']);
    expect(NODE_PHASES.filter(hasOutput)).toEqual(['writing', 'succeeded']);
  });

  const legal: [NodePhase, NodePhase][] = [
    ['pending', 'looking-up'],
    ['pending', 'dispatched'],
    ['pending', 'expanded'],
    ['pending', 'aborted'],
    ['pending', 'succeeded'],
    ['looking-up', 'succeeded'],
    ['looking-up', 'dispatched'],
    ['looking-up', 'expanded'],
    ['dispatched', 'dispatched'],
    ['dispatched', 'expanded'],
    ['dispatched', 'writing'],
    ['dispatched', 'succeeded'],
    ['dispatched', 'failed'],
    ['expanded', 'writing'],
    ['expanded', 'succeeded'],
    ['expanded', 'failed'],
    ['writing', 'succeeded'],
    // A cancelled run: every unfinished node but a writing one (it has its output: succeeded).
    ['pending', 'cancelled'],
    ['looking-up', 'cancelled'],
    ['dispatched', 'cancelled'],
    ['expanded', 'cancelled'],
  ];

  test('exactly the moves in the diagram are legal', () => {
    for (const from of NODE_PHASES) {
      for (const to of NODE_PHASES) {
        const allowed = legal.some(([f, t]) => f === from && t === to);
        if (allowed) expect(transition('n', from, to)).toBe(to);
        else expect(() => transition('n', from, to), `${from} -> ${to}`).toThrow(MemoflowError);
      }
    }
  });

  test('an illegal move is ILLEGAL_TRANSITION naming the node', () => {
    expect(() => transition('clean', 'succeeded', 'dispatched')).toThrow(
      expect.objectContaining({ code: 'ILLEGAL_TRANSITION', location: { node: 'clean' }, message: expect.stringContaining('succeeded -> dispatched') }),
    );
  });
});
