import type { NodeKind, NodeSpec } from '../../spec/workflow-spec.js';
import { dynamicHandler } from './dynamic/dynamic-handler.js';
import type { NodeHandler } from './node-handler.js';
import { subworkflowHandler } from './subworkflow/subworkflow-handler.js';
import { taskHandler } from './task/task-handler.js';

/**
 * The handler of each node kind (Flyte propeller's handler factory). A mapped type over the kinds:
 * a new kind does not compile until it has a handler.
 */
const HANDLERS: { readonly [K in NodeKind]: NodeHandler<Extract<NodeSpec, { kind: K }>> } = {
  task: taskHandler,
  dynamic: dynamicHandler,
  subworkflow: subworkflowHandler,
};

/** The handler for a node's kind. */
export function handlerFor(spec: NodeSpec): NodeHandler {
  return HANDLERS[spec.kind];
}
