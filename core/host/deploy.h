/*
 * deployments: integrations and instances that are live on a host.
 *
 * On disk a deployments directory holds DIR/integrations/NAME.json (an
 * integration document as it was given) and DIR/instances/NAME.json (an
 * instance document, naming its integration). In memory a deploy_table
 * maps instance names to validated, compiled deployments.
 *
 * Replacement is atomic for executions: the table holds one reference to
 * each deployment and an execution takes its own (deployment_ref) for as
 * long as it runs, so a redeploy swaps the table's entry while running
 * executions finish on the definition they started with.
 *
 * Thread: a table and the reference counts are owned by one thread (the
 * host's loop thread); nothing here locks. Must not touch the store, the
 * network or processes.
 */
#ifndef FERRY_CORE_HOST_DEPLOY_H
#define FERRY_CORE_HOST_DEPLOY_H

#include "flow/flow.h"

#include <jansson.h>
#include <stdint.h>

typedef struct deploy_table deploy_table;

typedef struct deployment {
    char *instance;          /* the instance's name: the table key */
    char *integration;       /* the integration's name */
    json_t *integration_doc; /* a reference; never modified */
    json_t *instance_doc;    /* a reference; never modified */
    flow_integration *ig;    /* compiled from integration_doc */
    flow_instance *in;       /* resolved from instance_doc */
    char *integration_file;  /* the label diags name: a path or "integration" */
    char *instance_file;     /* the label diags name */
    int64_t deployed_us;     /* when it was built, or its files' mtime */
    char integration_key[17]; /* hash of the integration's text, in hex:
                                 the zygote's cache key for its compiled
                                 form */
    const abi_registry *reg;  /* what ig was compiled against */
    /* What the webhook trigger made for this deployment at its first
     * request (its flows' verifiers, core/host/webhooks.c): NULL until
     * then, and freed with the deployment by webhooks_free. */
    void *webhooks;
    void (*webhooks_free)(void *webhooks);
    /* Both documents as the text of a spawn request's members
     * ("integration":...,"instance":...): made at the first spawn (the
     * documents never change), freed with the deployment. */
    char *spawn_docs;
    unsigned refs;
} deployment;

/* Validates both documents against reg and compiles them. Labels name the
 * documents in diags (FILE of "FILE: PATH: message"). Every error goes to
 * d; returns NULL if there was any. On success the deployment holds one
 * reference (the caller's) and its own reference to each document, which
 * must not be modified afterwards. reg is borrowed and must outlive the
 * deployment (its actions point into loaded components). */
deployment *deployment_build(json_t *integration_doc, json_t *instance_doc,
                             const char *integration_label,
                             const char *instance_label,
                             const abi_registry *reg, flow_diags *d);
/* As deployment_build, but if t holds a deployment of the same
 * integration, built against reg from a document equal to
 * integration_doc, the new one shares that deployment's document and
 * compiled integration instead of compiling its own (ten thousand instances
 * of one integration then hold one copy, as when a directory is loaded).
 * t may be NULL. */
deployment *deployment_build_in(const deploy_table *t, json_t *integration_doc,
                                json_t *instance_doc,
                                const char *integration_label,
                                const char *instance_label,
                                const abi_registry *reg, flow_diags *d);
/* Takes a reference; returns dp. NULL is ignored. */
deployment *deployment_ref(deployment *dp);
/* Drops a reference; the last one frees the deployment. NULL is ignored. */
void deployment_unref(deployment *dp);

deploy_table *deploy_table_new(void);
/* Drops the table's reference to every deployment. NULL is ignored. */
void deploy_table_free(deploy_table *t);

/* Loads every DIR/instances/NAME.json with the integration it names from
 * DIR/integrations/INTEGRATION.json and puts each valid one into t (adding
 * or replacing; entries whose files are gone are not removed: load into a
 * fresh table to mirror the directory). Invalid instances, missing
 * integration files, and file names that differ from the document's name
 * are reported in d and skipped. A DIR that does not exist holds nothing.
 * Returns the number of deployments loaded, or -1 (reported in d) if DIR
 * exists but cannot be read. reg: as for deployment_build. */
int deploy_table_load_dir(deploy_table *t, const char *dir,
                          const abi_registry *reg, flow_diags *d);

/* The deployment of an instance, borrowed (deployment_ref it to keep it
 * past the next put), or NULL. */
deployment *deploy_table_get(const deploy_table *t, const char *instance);
/* Makes dp the live deployment of dp->instance, taking over the caller's
 * reference (even on failure); a deployment it replaces is unref'd.
 * Returns 0, or -1 out of memory. */
int deploy_table_put(deploy_table *t, deployment *dp);
/* Removes an instance (its deployment is unref'd). Returns 0, or -1 if
 * there was none. */
int deploy_table_remove(deploy_table *t, const char *instance);
size_t deploy_table_count(const deploy_table *t);
/* The deployment at index i (below deploy_table_count), in instance name
 * order, borrowed: for walking every deployment without building a list
 * (nothing may put into or remove from the table during the walk). */
deployment *deploy_table_at(const deploy_table *t, size_t i);

/* One deployment as the API and `ferry instances list` show it: {instance,
 * integration, version, flows: [{name, trigger}], deployed}, trigger being
 * the trigger's type ("manual", "schedule", ...) and deployed an RFC 3339
 * UTC time with milliseconds. New reference. */
json_t *deployment_summary(const deployment *dp);
/* Every deployment's summary, sorted by instance name. New reference. */
json_t *deploy_table_list(const deploy_table *t);

/* Writes both documents into DIR (creating DIR, DIR/integrations and
 * DIR/instances as needed): DIR/integrations/NAME.json from the
 * integration's "name" and DIR/instances/NAME.json from the instance's
 * "name", the integration first. Each file is written to NAME.json.tmp-PID,
 * fsync'd and renamed over the old one, and the directory fsync'd, so a
 * reader sees the old file or the new one, never a part. An integration
 * file that already holds exactly this text (another instance of the same
 * integration was deployed) is left untouched. Names hold only
 * letters, digits, '.', '_' and '-' (not "." or ".."), and the instance's
 * "integration" must name the integration. Instance files (they hold
 * credentials) are written mode 0600. Documents are borrowed. Returns 0, or
 * -1 with *err malloc'd. */
int deploy_write(const char *dir, const json_t *integration_doc,
                 const json_t *instance_doc, char **err);

/* An integration file is shared by every instance of the integration, so
 * writing one changes what the others load next. Checks each instance in
 * DIR/instances that names integration_doc's integration (except the one
 * named except_instance, which may be NULL) against integration_doc.
 * Their errors go to d under their own files. Returns how many would no
 * longer be valid (0 if integration_doc itself is not valid: that is the
 * caller's to report; 0 without reading the instances if the integration
 * file already holds exactly what deploy_write would write, since nothing
 * changes for them). Documents borrowed; reg as for deployment_build. */
int deploy_check_dependents(const char *dir, const json_t *integration_doc,
                            const char *except_instance,
                            const abi_registry *reg, flow_diags *d);

/* Nonzero if name is a valid integration or instance name for a file. */
int deploy_name_ok(const char *name);

#endif
