/*
 * Running a component's poll trigger (flow_poll.c): in a worker, like a
 * one-step execution, so that the poll is isolated, limited and recorded
 * exactly as an action is.
 */
#ifndef FERRY_CORE_FLOW_POLL_H
#define FERRY_CORE_FLOW_POLL_H

#include "flow.h"

/* The suffix of the flow name a poll's own executions are recorded under
 * ("export:poll"): ':' cannot appear in a flow's name. */
#define FLOW_POLL_SUFFIX ":poll"

/* Builds the poll's input from the trigger's options (borrowed, config
 * references already resolved) and the cursor (borrowed; NULL or null the
 * first time): the options checked against the trigger's declared inputs
 * (unknown, missing required, wrong type), defaults applied, and "cursor"
 * added. Returns a new ref, or NULL with the reason in err (n bytes). */
json_t *flow_poll_input(const ferry_trigger *t, const json_t *options,
                        const json_t *cursor, char *err, size_t n);

/* Runs the poll of flow f (whose trigger is {"type": "poll", "source":
 * "<component>.<trigger>", "connection": NAME?}) with input (borrowed, from
 * flow_poll_input) as one step named "poll", recorded under the flow name
 * f->name + FLOW_POLL_SUFFIX. run_trigger: the execution's trigger payload
 * (borrowed). On success res->output is what the poll set, checked to be
 * {"items": [...], "cursor": any}. Returns as flow_execute. */
int flow_poll(const flow_integration *ig, const flow_instance *in,
              const flow_def *f, const abi_registry *reg, const json_t *input,
              json_t *run_trigger, const flow_exec_opts *o, flow_result *res);

#endif
