/*
 * `ferry secrets`: the master key that encrypts tokens and other secrets
 * in the store.
 */
#include "cli/cli.h"
#include "tokens/tokens.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_main[] =
    "usage: ferry secrets generate-key\n"
    "       ferry secrets rotate-key --new-key-file FILE [--db PATH]\n"
    "\n"
    "  generate-key  print a new random master key (64 hex digits)\n"
    "  rotate-key    re-encrypt everything the store holds under a new key\n"
    "\n"
    "The master key comes from FERRY_MASTER_KEY, else the file named by\n"
    "FERRY_MASTER_KEY_FILE (or master_key_file in the serve config).\n";

static const char usage_rotate[] =
    "usage: ferry secrets rotate-key --new-key-file FILE [--db PATH]\n"
    "\n"
    "Re-encrypts every encrypted value of the store (OAuth tokens and the\n"
    "key's check value) from the current master key (FERRY_MASTER_KEY or\n"
    "FERRY_MASTER_KEY_FILE) to the key in FILE, in one transaction: either\n"
    "everything moves to the new key or nothing changes. Stop the host\n"
    "first, and start it again with the new key.\n"
    "\n"
    "  -k, --new-key-file FILE  the new key (mode 600, 64 hex digits or\n"
    "                           base64 of 32 bytes)\n"
    "      --db PATH            the store (default $FERRY_DB, else ferry.db)\n";

static int rotate(int argc, char **argv) {
    static const struct option opts[] = {{"new-key-file", 1, NULL, 'k'},
                                         {"db", 1, NULL, 'D'},
                                         {"help", 0, NULL, 'h'},
                                         {0}};
    const char *newfile = NULL, *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            newfile = optarg;
            break;
        case 'D':
            db = optarg;
            break;
        case 'h':
            fputs(usage_rotate, stdout);
            return CLI_OK;
        default:
            fputs(usage_rotate, stderr);
            return CLI_USAGE;
        }
    }
    if (!newfile || optind < argc) {
        fputs(usage_rotate, stderr);
        return CLI_USAGE;
    }
    secret_key old, neu;
    char err[512];
    int kr = secret_key_load(getenv("FERRY_MASTER_KEY"),
                             getenv("FERRY_MASTER_KEY_FILE"), &old, err,
                             sizeof(err));
    if (kr <= 0) {
        fprintf(stderr, "ferry secrets rotate-key: %s\n",
                kr ? err
                   : "no current key: set FERRY_MASTER_KEY or "
                     "FERRY_MASTER_KEY_FILE");
        return CLI_USAGE;
    }
    if (secret_key_load(NULL, newfile, &neu, err, sizeof(err)) != 1) {
        fprintf(stderr, "ferry secrets rotate-key: %s\n", err);
        return CLI_USAGE;
    }
    if (!strcmp(old.id, neu.id)) {
        fprintf(stderr, "ferry secrets rotate-key: the new key is the "
                        "current one\n");
        return CLI_USAGE;
    }
    char *oerr = NULL;
    store *st = store_open_sqlite(cli_db_path(db), &oerr);
    if (!st) {
        fprintf(stderr, "ferry: cannot open the store %s: %s\n",
                cli_db_path(db), oerr ? oerr : "unknown error");
        free(oerr);
        return CLI_FAILED;
    }
    int count = 0, status = CLI_FAILED;
    if (st->vt->tx_begin(st)) {
        fprintf(stderr, "ferry secrets rotate-key: %s\n", st->errmsg);
    } else if (tokens_rotate(st, &old, &neu, &count, err, sizeof(err))) {
        st->vt->tx_rollback(st);
        fprintf(stderr, "ferry secrets rotate-key: %s; nothing was changed\n",
                err);
    } else if (st->vt->tx_commit(st)) {
        st->vt->tx_rollback(st);
        fprintf(stderr, "ferry secrets rotate-key: %s; nothing was changed\n",
                st->errmsg);
    } else {
        printf("re-encrypted %d value(s) from key %s to key %s\n", count,
               old.id, neu.id);
        status = CLI_OK;
    }
    store_close(st);
    memset(&old, 0, sizeof(old));
    memset(&neu, 0, sizeof(neu));
    return status;
}

int cli_secrets(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "generate-key")) {
        char hex[65];
        if (secret_key_generate(hex)) {
            fprintf(stderr, "ferry secrets: no random bytes\n");
            return CLI_FAILED;
        }
        printf("%s\n", hex);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "rotate-key"))
        return rotate(argc - 1, argv + 1);
    fprintf(stderr, "ferry secrets: unknown command '%s'\n\n%s", argv[1],
            usage_main);
    return CLI_USAGE;
}
