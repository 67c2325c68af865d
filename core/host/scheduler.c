/*
 * The scheduler: fires schedule triggers of deployed instances. (Being
 * built: until then no schedule fires on its own.)
 */
#include "host_internal.h"

void host_sched_start(host *h) { (void)h; }
void host_sched_reload(host *h) { (void)h; }
void host_sched_stop(host *h) { (void)h; }
