/*
 * host configuration: the parsers behind host_config_load (host.h), shared
 * with `ferry serve` so that its flags accept exactly what the config file
 * and the FERRY_* variables accept. Pure functions: no I/O, no globals.
 */
#ifndef FERRY_CORE_HOST_CONFIG_H
#define FERRY_CORE_HOST_CONFIG_H

#include "flow/flow.h"
#include "host.h"

#include <stdint.h>

/* A listen address: an IPv4 literal or a bracketed IPv6 literal, a colon
 * and a port: "127.0.0.1:8080", "[::1]:0". Returns 0 with *host malloc'd
 * (without brackets: "::1") and *port set; -1 if malformed, -2 if the port
 * is outside 0..65535. Outputs are left alone on failure. */
int host_parse_listen(const char *s, char **host, int *port);

/* The expected forms, as error messages quote them. Static strings. */
#define HOST_DURATION_EXPECTED                                                 \
    "expected a duration like \"30s\" or \"15m\" (units ms, s, m, h, d) or a " \
    "number of milliseconds"
#define HOST_SIZE_EXPECTED                                                     \
    "expected a size like \"64KiB\" or \"512MiB\" (units B, KiB, MiB, GiB) "   \
    "or a number of bytes"
#define HOST_LISTEN_EXPECTED                                                   \
    "expected an IPv4 address or a bracketed IPv6 address and a port, like "   \
    "\"127.0.0.1:8080\" or \"[::1]:8080\""

#endif
