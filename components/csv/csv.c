/*
 * csv: a ferry component that reads and writes CSV (RFC 4180).
 *
 * Actions:
 *   csv.parse     CSV text or a blob to rows (objects or arrays); a blob is
 *                 read in chunks, never whole
 *   csv.generate  rows (objects or arrays) to CSV text, or to a blob when
 *                 asked or when the text is large
 *
 * Fields are read by csvparse.c and written by csvwrite.c, which know
 * nothing of ferry; this file turns the step's input into their options,
 * records into JSON and JSON into records, and talks to the host.
 * docs/csv.md is the reference for users.
 */
#include "csvparse.h"
#include "csvwrite.h"

#include <ferry/ferry.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The host's table; set once by the entry function, borrowed. */
static const ferry_api *api;

/* Bytes asked of blob_read at a time, and written to a blob at a time. */
#define CSV_CHUNK (64 * 1024)
/* csv.parse lists at most this many skipped records in "errors". */
#define CSV_MAX_ERRORS 100
/* csv.generate's "auto" output: text up to this size, a blob above. */
#define CSV_STRING_MAX (1024 * 1024)
/* Records between two looks at api->cancelled. */
#define CSV_CANCEL_EVERY 4096
#define CSV_CONTENT_TYPE "text/csv; charset=utf-8"

/* ---- input helpers ---- */

/* The host applies defaults and checks types before calling; the
 * fallbacks only matter for a host that does not (or a test that calls an
 * action directly). */
static int input_bool(const json_t *input, const char *key, int dflt) {
    const json_t *v = json_object_get(input, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static const json_t *input_string(ferry_ctx *ctx, const json_t *input,
                                  const char *key, int *rc) {
    const json_t *v = json_object_get(input, key);
    if (v && !json_is_string(v))
        *rc = api->set_error(ctx, FERRY_EINVAL, 0, "%s must be a string", key);
    return json_is_string(v) ? v : NULL;
}

/* The value as JSON text for an error message (quoted, escaped). */
static void show_value(const json_t *v, char *out, size_t n) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, n, "%s", s ? s : "?");
    if (s && strlen(s) >= n && n > 4)
        memcpy(out + n - 4, "...", 4);
    free(s);
}

/*
 * A one-byte option (delimiter, quote) into *out: the string's only byte,
 * or dflt when the input does not give it. An empty string gives
 * CSV_NO_QUOTE if allow_none, else is an error. Errors name the option.
 */
static int byte_option(ferry_ctx *ctx, const json_t *input, const char *name,
                       int dflt, int allow_none, int *out) {
    int rc = FERRY_OK;
    const json_t *v = input_string(ctx, input, name, &rc);
    char shown[64];
    if (rc)
        return rc;
    if (!v) {
        *out = dflt;
        return FERRY_OK;
    }
    size_t n = json_string_length(v);
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    if (n == 0) {
        if (allow_none) {
            *out = CSV_NO_QUOTE;
            return FERRY_OK;
        }
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "%s must be one character, got \"\"", name);
    }
    show_value(v, shown, sizeof(shown));
    if (n > 1)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "%s must be one single-byte (ASCII) character, "
                              "got %s",
                              name, shown);
    if (s[0] == '\r' || s[0] == '\n')
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "%s cannot be a line break, got %s", name, shown);
    *out = s[0];
    return FERRY_OK;
}

/* delimiter and quote, checked against each other. */
static int delimiter_and_quote(ferry_ctx *ctx, const json_t *input,
                               int allow_no_quote, unsigned char *delimiter,
                               int *quote) {
    int d, rc;
    if ((rc = byte_option(ctx, input, "delimiter", ',', 0, &d)) ||
        (rc = byte_option(ctx, input, "quote", '"', allow_no_quote, quote)))
        return rc;
    if (d == *quote)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "delimiter and quote are both '%c'; they must "
                              "differ",
                              d);
    *delimiter = (unsigned char)d;
    return FERRY_OK;
}

/* One of words (NULL terminated) for option name; dflt if absent. An
 * error lists the first nshow words. */
static int word_option(ferry_ctx *ctx, const json_t *input, const char *name,
                       const char *const *words, int nshow, int dflt,
                       int *out) {
    int rc = FERRY_OK;
    const json_t *v = input_string(ctx, input, name, &rc);
    char shown[64], allowed[128] = "";
    if (rc)
        return rc;
    if (!v) {
        *out = dflt;
        return FERRY_OK;
    }
    for (int i = 0; words[i]; i++) {
        if (strcmp(json_string_value(v), words[i]) == 0) {
            *out = i;
            return FERRY_OK;
        }
        if (i < nshow)
            snprintf(allowed + strlen(allowed),
                     sizeof(allowed) - strlen(allowed), "%s\"%s\"",
                     i == 0          ? ""
                     : i + 1 < nshow ? ", "
                                     : " or ",
                     words[i]);
    }
    show_value(v, shown, sizeof(shown));
    return api->set_error(ctx, FERRY_EINVAL, 0, "%s must be %s, got %s", name,
                          allowed, shown);
}

/* Checks the columns input: a non-empty array of distinct strings. Sets
 * *out to a new ref of it, or NULL when not given. */
static int columns_option(ferry_ctx *ctx, const json_t *input, json_t **out) {
    const json_t *cols = json_object_get(input, "columns");
    json_t *seen;
    size_t i;
    const json_t *name;
    char shown[64];
    *out = NULL;
    if (!cols)
        return FERRY_OK;
    if (!json_is_array(cols))
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "columns must be an array of strings");
    if (json_array_size(cols) == 0)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "columns must name at least one column");
    if (!(seen = json_object()))
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    json_array_foreach(cols, i, name) {
        if (!json_is_string(name)) {
            json_decref(seen);
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "columns[%zu] must be a string", i);
        }
        const char *s = json_string_value(name);
        size_t n = json_string_length(name);
        if (json_object_getn(seen, s, n)) {
            json_decref(seen);
            show_value(name, shown, sizeof(shown));
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "columns[%zu]: duplicate name %s", i, shown);
        }
        if (json_object_setn_new(seen, s, n, json_true())) {
            json_decref(seen);
            return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        }
    }
    json_decref(seen);
    *out = json_incref((json_t *)cols);
    return FERRY_OK;
}

/* base (n bytes), or base_2, base_3, ...: the first that is not a key of
 * taken. Returns a new string, or NULL out of memory. */
static json_t *unique_name(const json_t *taken, const char *base, size_t n) {
    if (!json_object_getn(taken, base, n))
        return json_stringn(base, n);
    char *s = malloc(n + 24);
    json_t *name = NULL;
    if (!s)
        return NULL;
    memcpy(s, base, n);
    for (unsigned long k = 2;; k++) {
        int m = snprintf(s + n, 24, "_%lu", k);
        if (!json_object_getn(taken, s, n + (size_t)m)) {
            name = json_stringn(s, n + (size_t)m);
            break;
        }
    }
    free(s);
    return name;
}

/* ---- csv.parse ---- */

typedef struct parse_run {
    ferry_ctx *ctx;
    int need_header; /* the next record is the header line */
    int given;       /* columns came from the input */
    int infer;
    int skip;
    json_t *columns; /* names, or NULL when rows are arrays; owned */
    json_t *rows;    /* owned */
    json_t *errors;  /* owned */
    uint64_t skipped;
    csv_error first; /* the first skipped record's error */
    int code;        /* the error set when a callback stopped the parse */
} parse_run;

/* What a callback returns to stop the parse, after set_error (the code is
 * kept in pr->code). */
#define STOP 1

static int stop(parse_run *pr, int code) {
    pr->code = code;
    return STOP;
}

static int nomem(parse_run *pr) {
    return stop(pr, api->set_error(pr->ctx, FERRY_ENOMEM, 1, "out of memory"));
}

static json_t *field_value(const parse_run *pr, const csv_field *f) {
    int64_t i = 0;
    double d = 0;
    switch (pr->infer ? csv_infer(f->data, f->len, f->quoted, &i, &d)
                      : CSV_KIND_STRING) {
    case CSV_KIND_NULL:
        return json_null();
    case CSV_KIND_TRUE:
        return json_true();
    case CSV_KIND_FALSE:
        return json_false();
    case CSV_KIND_INTEGER:
        return json_integer((json_int_t)i);
    case CSV_KIND_REAL:
        return json_real(d);
    case CSV_KIND_STRING:
        break;
    }
    /* The parser passes on valid UTF-8 only, so NULL means no memory. */
    return json_stringn(f->data, f->len);
}

/* The header line: column names, an empty one named column_N, a repeated
 * one made unique with _2, _3, ... */
static int read_header(parse_run *pr, const csv_record *r) {
    json_t *taken = json_object();
    char gen[32];
    if (!taken)
        return nomem(pr);
    for (size_t i = 0; i < r->nfields; i++) {
        const csv_field *f = &r->fields[i];
        const char *base = f->data;
        size_t n = f->len;
        if (n == 0) {
            n = (size_t)snprintf(gen, sizeof(gen), "column_%zu", i + 1);
            base = gen;
        }
        json_t *name = unique_name(taken, base, n);
        if (!name ||
            json_object_setn_new(taken, json_string_value(name),
                                 json_string_length(name), json_true()) ||
            json_array_append_new(pr->columns, name)) {
            json_decref(taken);
            return nomem(pr);
        }
    }
    json_decref(taken);
    return 0;
}

static json_t *object_row(parse_run *pr, const csv_record *r) {
    json_t *row = json_object();
    size_t ncol = json_array_size(pr->columns);
    char gen[32];
    if (!row)
        return NULL;
    for (size_t i = 0; i < ncol; i++) {
        const json_t *key = json_array_get(pr->columns, i);
        json_t *v =
            i < r->nfields ? field_value(pr, &r->fields[i]) : json_null();
        if (json_object_setn_new(row, json_string_value(key),
                                 json_string_length(key), v))
            goto fail;
    }
    /* Not strict: fields past the named ones keep their place's name. */
    for (size_t i = ncol; i < r->nfields; i++) {
        int n = snprintf(gen, sizeof(gen), "column_%zu", i + 1);
        json_t *key = unique_name(row, gen, (size_t)n);
        int bad = !key || json_object_setn_new(row, json_string_value(key),
                                               json_string_length(key),
                                               field_value(pr, &r->fields[i]));
        json_decref(key);
        if (bad)
            goto fail;
    }
    return row;
fail:
    json_decref(row);
    return NULL;
}

static json_t *array_row(const parse_run *pr, const csv_record *r) {
    json_t *row = json_array();
    if (!row)
        return NULL;
    for (size_t i = 0; i < r->nfields; i++) {
        if (json_array_append_new(row, field_value(pr, &r->fields[i]))) {
            json_decref(row);
            return NULL;
        }
    }
    return row;
}

static int on_record(void *ud, const csv_record *r) {
    parse_run *pr = ud;
    if (pr->need_header) {
        pr->need_header = 0;
        return pr->given ? 0 : read_header(pr, r);
    }
    size_t n = json_array_size(pr->rows);
    if (n % CSV_CANCEL_EVERY == CSV_CANCEL_EVERY - 1 &&
        api->cancelled(pr->ctx)) {
        return stop(pr,
                    api->set_error(pr->ctx, FERRY_ECANCELLED, 0, "cancelled"));
    }
    json_t *row = pr->columns ? object_row(pr, r) : array_row(pr, r);
    if (!row || json_array_append_new(pr->rows, row))
        return nomem(pr);
    return 0;
}

static int on_error(void *ud, const csv_error *e) {
    parse_run *pr = ud;
    if (pr->need_header || !pr->skip) {
        return stop(
            pr, api->set_error(pr->ctx, FERRY_EPARSE, 0,
                               "line %" PRIu64 ", column %" PRIu64 ": %s%s",
                               e->line, e->column, e->message,
                               pr->need_header ? " (in the header line)" : ""));
    }
    if (pr->skipped++ == 0)
        pr->first = *e;
    if (json_array_size(pr->errors) < CSV_MAX_ERRORS &&
        json_array_append_new(
            pr->errors,
            json_pack("{s:I, s:I, s:I, s:s}", "line", (json_int_t)e->line,
                      "column", (json_int_t)e->column, "record_line",
                      (json_int_t)e->record_line, "message", e->message)))
        return nomem(pr);
    return 0;
}

/* Feeds the blob to p in CSV_CHUNK reads. Returns 0, a parser code, or
 * STOP with the error set. */
static int feed_blob(parse_run *pr, csv_parser *p, const json_t *ref) {
    ferry_blob_reader *r = api->blob_open(pr->ctx, ref);
    char *buf;
    long n;
    int rc = 0;
    if (!r)
        return stop(pr, api->set_error(pr->ctx, FERRY_ENOTFOUND, 0,
                                       "blob: no such blob in this execution"));
    if (!(buf = malloc(CSV_CHUNK))) {
        api->blob_close(r);
        return nomem(pr);
    }
    while ((n = api->blob_read(r, buf, CSV_CHUNK)) > 0) {
        if (api->cancelled(pr->ctx)) {
            rc = stop(
                pr, api->set_error(pr->ctx, FERRY_ECANCELLED, 0, "cancelled"));
            break;
        }
        if ((rc = csv_parser_feed(p, buf, (size_t)n)))
            break;
    }
    if (n < 0)
        rc = stop(pr, api->set_error(pr->ctx, (int)n, 1, "reading the blob: %s",
                                     ferry_strerror((int)n)));
    free(buf);
    api->blob_close(r);
    return rc;
}

static const char *const on_error_words[] = {"fail", "skip", NULL};

static int parse_options(ferry_ctx *ctx, const json_t *input, parse_run *pr,
                         csv_parse_options *o) {
    int quote, rc;
    memset(o, 0, sizeof(*o));
    if ((rc = delimiter_and_quote(ctx, input, 1, &o->delimiter, &quote)))
        return rc;
    o->quote = quote;
    o->trim = input_bool(input, "trim", 0);
    o->skip_empty_lines = input_bool(input, "skip_empty_lines", 1);
    o->strict = input_bool(input, "strict", 1);
    if (o->trim && o->delimiter == ' ')
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "delimiter cannot be a space when trim is on");
    if (o->trim && (o->quote == ' ' || o->quote == '\t'))
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "quote cannot be a space or a tab when trim is "
                              "on");
    if ((rc = word_option(ctx, input, "on_error", on_error_words, 2, 0,
                          &pr->skip)))
        return rc;
    pr->infer = input_bool(input, "infer_types", 0);
    if ((rc = columns_option(ctx, input, &pr->columns)))
        return rc;
    pr->given = pr->columns != NULL;
    pr->need_header = input_bool(input, "header", !pr->given);
    if (pr->given)
        o->expected_fields = json_array_size(pr->columns);
    else if (pr->need_header && !(pr->columns = json_array()))
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    return FERRY_OK;
}

static int parse_action(ferry_ctx *ctx, const json_t *input) {
    const json_t *text = json_object_get(input, "text");
    const json_t *blob = json_object_get(input, "blob");
    parse_run pr = {.ctx = ctx};
    csv_parse_options o;
    csv_callbacks cb = {on_record, on_error};
    csv_parser *p = NULL;
    int rc;

    if (!text == !blob) {
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              text ? "give text or blob, not both"
                                   : "give the CSV as text or as blob");
    }
    if (text && !json_is_string(text))
        return api->set_error(ctx, FERRY_EINVAL, 0, "text must be a string");
    if ((rc = parse_options(ctx, input, &pr, &o)))
        goto out;
    pr.rows = json_array();
    pr.errors = json_array();
    p = csv_parser_new(&o, &cb, &pr);
    if (!pr.rows || !pr.errors || !p) {
        rc = api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        goto out;
    }
    if (text)
        rc = csv_parser_feed(p, json_string_value(text),
                             json_string_length(text));
    else
        rc = feed_blob(&pr, p, blob);
    if (!rc)
        rc = csv_parser_finish(p);
    if (rc == CSV_ENOMEM) {
        rc = api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        goto out;
    }
    if (rc) {
        rc = pr.code; /* a callback stopped the parse and set the error */
        goto out;
    }

    size_t count = json_array_size(pr.rows);
    uint64_t bytes = csv_parser_bytes(p);
    if (pr.skipped)
        api->log(ctx, FERRY_LOG_WARN,
                 json_pack("{s:I}", "skipped", (json_int_t)pr.skipped),
                 "skipped %" PRIu64 " malformed record%s; the first at line "
                 "%" PRIu64 ", column %" PRIu64 ": %s",
                 pr.skipped, pr.skipped == 1 ? "" : "s", pr.first.line,
                 pr.first.column, pr.first.message);
    api->log(ctx, FERRY_LOG_INFO,
             json_pack("{s:I, s:I}", "rows", (json_int_t)count, "bytes",
                       (json_int_t)bytes),
             "parsed %zu row%s from %" PRIu64 " bytes", count,
             count == 1 ? "" : "s", bytes);
    json_t *out =
        json_pack("{s:O, s:O?, s:I, s:I, s:O}", "rows", pr.rows, "columns",
                  pr.columns, "count", (json_int_t)count, "skipped",
                  (json_int_t)pr.skipped, "errors", pr.errors);
    if (!out || api->set_output(ctx, out))
        rc = api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
out:
    csv_parser_free(p);
    json_decref(pr.rows);
    json_decref(pr.errors);
    json_decref(pr.columns);
    return rc;
}

/* ---- csv.generate ---- */

enum out_mode { OUT_AUTO, OUT_STRING, OUT_BLOB };
static const char *const output_words[] = {"auto", "string", "blob", NULL};
static const char *const newline_words[] = {"crlf", "lf", "\r\n", "\n", NULL};

typedef struct gen_run {
    ferry_ctx *ctx;
    csv_write_options o;
    const char *newline;
    int mode;
    csv_buf buf;
    ferry_blob_writer *w; /* NULL while the text is kept in buf */
    uint64_t bytes;       /* written so far, buf included */
} gen_run;

/* Moves what buf holds to the blob once there is enough of it, starting
 * the blob when the output becomes one. */
static int gen_flush(gen_run *g, int last) {
    if (!g->w) {
        int blob = g->mode == OUT_BLOB ||
                   (g->mode == OUT_AUTO && g->buf.len > CSV_STRING_MAX);
        if (!blob || (g->mode == OUT_BLOB && !last && g->buf.len < CSV_CHUNK))
            return FERRY_OK;
        if (!(g->w = api->blob_create(g->ctx, CSV_CONTENT_TYPE)))
            return api->set_error(g->ctx, FERRY_EIO, 1,
                                  "cannot create the output blob");
    } else if (!last && g->buf.len < CSV_CHUNK) {
        return FERRY_OK;
    }
    int rc = api->blob_write(g->w, g->buf.data, g->buf.len);
    if (rc)
        return api->set_error(g->ctx, rc, 1, "writing the output blob: %s",
                              ferry_strerror(rc));
    g->buf.len = 0;
    return FERRY_OK;
}

/* The shortest text that reads back as d. */
static int format_real(double d, char *out, size_t n) {
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    return len;
}

/* A nested object or array as compact JSON, reals short where that reads
 * back the same. Returns malloc'd text or NULL. */
static char *nested_text(const json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_t *back = s ? json_loads(s, 0, NULL) : NULL;
    int same = back && json_equal(back, (json_t *)v);
    json_decref(back);
    if (same)
        return s;
    free(s);
    return json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
}

/* Writes the cell for v (NULL: a missing key). */
static int write_cell(gen_run *g, const json_t *v) {
    char num[40];
    int rc = 0;
    switch (json_typeof(v ? v : json_null())) {
    case JSON_STRING:
        rc = csv_write_field(&g->buf, json_string_value(v),
                             json_string_length(v), 1, &g->o);
        break;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        rc = csv_write_field(&g->buf, num, (size_t)n, 0, &g->o);
        break;
    }
    case JSON_REAL: {
        int n = format_real(json_real_value(v), num, sizeof(num));
        rc = csv_write_field(&g->buf, num, (size_t)n, 0, &g->o);
        break;
    }
    case JSON_TRUE:
        rc = csv_write_field(&g->buf, "true", 4, 0, &g->o);
        break;
    case JSON_FALSE:
        rc = csv_write_field(&g->buf, "false", 5, 0, &g->o);
        break;
    case JSON_NULL:
        break;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        char *s = nested_text(v);
        rc = !s || csv_write_field(&g->buf, s, strlen(s), 1, &g->o);
        free(s);
        break;
    }
    }
    return rc ? api->set_error(g->ctx, FERRY_ENOMEM, 1, "out of memory")
              : FERRY_OK;
}

/* Between cells; and at the end of a record, which must not come out as
 * an empty line (a reader would skip it): a lone empty cell is "". */
static int cell_sep(gen_run *g) {
    if (csv_buf_add(&g->buf, &g->o.delimiter, 1))
        return api->set_error(g->ctx, FERRY_ENOMEM, 1, "out of memory");
    return FERRY_OK;
}

static int record_done(gen_run *g, size_t record_start, size_t width) {
    int rc = 0;
    if (width == 1 && g->buf.len == record_start) {
        unsigned char q[2] = {g->o.quote, g->o.quote};
        rc = csv_buf_add(&g->buf, q, 2);
    }
    if (rc || csv_buf_add(&g->buf, g->newline, strlen(g->newline)))
        return api->set_error(g->ctx, FERRY_ENOMEM, 1, "out of memory");
    g->bytes += g->buf.len - record_start;
    return gen_flush(g, 0);
}

/* Column names of object rows in the order of first appearance: the first
 * row's keys, then each key a later row adds. */
static json_t *collect_columns(const json_t *rows) {
    json_t *names = json_array(), *seen = json_object();
    size_t i;
    const json_t *row;
    if (!names || !seen)
        goto fail;
    json_array_foreach(rows, i, row) {
        const char *key;
        size_t klen;
        json_t *v;
        json_object_keylen_foreach((json_t *)row, key, klen, v) {
            (void)v;
            if (json_object_getn(seen, key, klen))
                continue;
            if (json_object_setn_new(seen, key, klen, json_true()) ||
                json_array_append_new(names, json_stringn(key, klen)))
                goto fail;
        }
    }
    json_decref(seen);
    return names;
fail:
    json_decref(names);
    json_decref(seen);
    return NULL;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

/* Checks that rows are all objects or all arrays (as the first one) and
 * finds the widest array. */
static int check_rows(ferry_ctx *ctx, const json_t *rows, const json_t *columns,
                      int *objects, size_t *width) {
    size_t i;
    const json_t *row;
    *objects = json_is_object(json_array_get(rows, 0));
    *width = columns ? json_array_size(columns) : 0;
    json_array_foreach(rows, i, row) {
        if (!json_is_object(row) && !json_is_array(row))
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "rows[%zu] is %s; each row must be an "
                                  "object or an array",
                                  i, type_name(row));
        if (json_is_object(row) != *objects)
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "rows[%zu] is %s but rows[0] is %s; rows "
                                  "must be all objects or all arrays",
                                  i, type_name(row),
                                  type_name(json_array_get(rows, 0)));
        if (*objects)
            continue;
        size_t n = json_array_size(row);
        if (columns && n > *width)
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "rows[%zu] has %zu values but columns names "
                                  "%zu",
                                  i, n, *width);
        if (n > *width)
            *width = n;
    }
    return FERRY_OK;
}

static int write_rows(gen_run *g, const json_t *rows, const json_t *columns,
                      int objects, size_t width, int header) {
    size_t i;
    const json_t *row;
    int rc;
    if (width == 0)
        return FERRY_OK; /* no columns: nothing to write, not empty lines */
    if (header && columns) {
        size_t start = g->buf.len;
        for (size_t c = 0; c < width; c++) {
            if ((c && (rc = cell_sep(g))) ||
                (rc = write_cell(g, json_array_get(columns, c))))
                return rc;
        }
        if ((rc = record_done(g, start, width)))
            return rc;
    }
    json_array_foreach(rows, i, row) {
        size_t start = g->buf.len;
        if (i % CSV_CANCEL_EVERY == CSV_CANCEL_EVERY - 1 &&
            api->cancelled(g->ctx))
            return api->set_error(g->ctx, FERRY_ECANCELLED, 0, "cancelled");
        for (size_t c = 0; c < width; c++) {
            const json_t *v;
            if (objects) {
                const json_t *key = json_array_get(columns, c);
                v = json_object_getn(row, json_string_value(key),
                                     json_string_length(key));
            } else {
                v = json_array_get(row, c);
            }
            if ((c && (rc = cell_sep(g))) || (rc = write_cell(g, v)))
                return rc;
        }
        if ((rc = record_done(g, start, width)))
            return rc;
    }
    return FERRY_OK;
}

static int generate_action(ferry_ctx *ctx, const json_t *input) {
    const json_t *rows = json_object_get(input, "rows");
    gen_run g = {.ctx = ctx};
    json_t *columns = NULL, *text = NULL, *ref = NULL;
    int quote, nl, objects, rc;
    size_t width;

    if (!json_is_array(rows))
        return api->set_error(ctx, FERRY_EINVAL, 0, "rows must be an array");
    if ((rc = delimiter_and_quote(ctx, input, 0, &g.o.delimiter, &quote)) ||
        (rc = word_option(ctx, input, "newline", newline_words, 2, 0, &nl)) ||
        (rc = word_option(ctx, input, "output", output_words, 3, OUT_AUTO,
                          &g.mode)) ||
        (rc = columns_option(ctx, input, &columns)))
        goto out;
    g.o.quote = (unsigned char)quote;
    g.o.escape_formulas = input_bool(input, "escape_formulas", 1);
    g.newline = nl % 2 == 0 ? "\r\n" : "\n";
    if ((rc = check_rows(ctx, rows, columns, &objects, &width)))
        goto out;
    if (objects && !columns) {
        if (!(columns = collect_columns(rows))) {
            rc = api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
            goto out;
        }
        width = json_array_size(columns);
    }
    if ((rc = write_rows(&g, rows, columns, objects, width,
                         input_bool(input, "header", 1))) ||
        (rc = gen_flush(&g, 1)))
        goto out;

    if (g.w) {
        ref = api->blob_finish(g.w);
        g.w = NULL;
        if (!ref) {
            rc = api->set_error(ctx, FERRY_EIO, 1,
                                "cannot finish the output blob");
            goto out;
        }
    } else if (!(text =
                     json_stringn(g.buf.data ? g.buf.data : "", g.buf.len))) {
        rc = api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        goto out;
    }
    api->log(ctx, FERRY_LOG_INFO,
             json_pack("{s:I, s:I}", "rows", (json_int_t)json_array_size(rows),
                       "bytes", (json_int_t)g.bytes),
             "wrote %zu row%s, %" PRIu64 " bytes%s", json_array_size(rows),
             json_array_size(rows) == 1 ? "" : "s", g.bytes,
             ref ? ", as a blob" : "");
    json_t *out =
        json_pack("{s:O?, s:O?, s:O?, s:I, s:I}", "text", text, "blob", ref,
                  "columns", columns, "rows", (json_int_t)json_array_size(rows),
                  "bytes", (json_int_t)g.bytes);
    if (!out || api->set_output(ctx, out))
        rc = api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
out:
    if (g.w)
        api->blob_abort(g.w);
    csv_buf_free(&g.buf);
    json_decref(columns);
    json_decref(text);
    json_decref(ref);
    return rc;
}

/* ---- description ---- */

static const ferry_input parse_inputs[] = {
    {"text", "string", 0, NULL, "the CSV as text (give text or blob)"},
    {"blob", "blob", 0, NULL,
     "the CSV in a blob, read in chunks (give text or blob)"},
    {"delimiter", "string", 0, "\",\"",
     "field separator: one single-byte character, \"\\t\" for tab"},
    {"quote", "string", 0, "\"\\\"\"",
     "quote character: one single-byte character; \"\" reads quotes as text"},
    {"header", "boolean", 0, NULL,
     "the first record names the columns and rows are objects (default "
     "true; false when columns is given)"},
    {"columns", "array", 0, NULL,
     "column names (strings): rows are objects with these keys"},
    {"trim", "boolean", 0, "false",
     "drop spaces and tabs around fields (and allow them around quotes)"},
    {"skip_empty_lines", "boolean", 0, "true",
     "drop empty lines instead of reading each as one empty field"},
    {"infer_types", "boolean", 0, "false",
     "unquoted numbers, true/false and empty fields become numbers, "
     "booleans and null"},
    {"strict", "boolean", 0, "true",
     "every record has as many fields as the header, columns or first "
     "record"},
    {"on_error", "string", 0, "\"fail\"",
     "a malformed record: \"fail\" the step, or \"skip\" it and list it in "
     "errors"},
    {0},
};

static const ferry_input generate_inputs[] = {
    {"rows", "array", 1, NULL,
     "the records: all objects (keys are columns) or all arrays"},
    {"columns", "array", 0, NULL,
     "column names (strings): the order and choice of object keys, or the "
     "header of array rows (default: keys in order of first appearance)"},
    {"header", "boolean", 0, "true", "write a header line of column names"},
    {"delimiter", "string", 0, "\",\"",
     "field separator: one single-byte character"},
    {"quote", "string", 0, "\"\\\"\"",
     "quote character: one single-byte "
     "character"},
    {"newline", "string", 0, "\"crlf\"",
     "line end: \"crlf\" (RFC 4180) or \"lf\""},
    {"escape_formulas", "boolean", 0, "true",
     "prefix text starting with = + - @, a tab, CR or NUL with ' so "
     "spreadsheets do not run it as a formula"},
    {"output", "string", 0, "\"auto\"",
     "\"string\", \"blob\", or \"auto\": a string up to 1 MiB, else a blob"},
    {0},
};

static const ferry_action actions[] = {
    {.id = "csv.parse",
     .label = "Parse CSV",
     .description = "Reads CSV (RFC 4180) from text or a blob into rows.",
     .inputs = parse_inputs,
     .output = "{\"rows\": [object or array], \"columns\": [string] or null, "
               "\"count\": integer, \"skipped\": integer, \"errors\": "
               "[{line, column, record_line, message}]}",
     .run = parse_action,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "csv.generate",
     .label = "Generate CSV",
     .description = "Writes rows as CSV (RFC 4180) text or a blob.",
     .inputs = generate_inputs,
     .output = "{\"text\": string or null, \"blob\": blob or null, "
               "\"columns\": [string] or null, \"rows\": integer, \"bytes\": "
               "integer}",
     .run = generate_action,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {0},
};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .flags = FERRY_COMPONENT_NO_HTTP, /* never calls api->http_request */
    .name = "csv",
    .version = "1.0.0",
    .description = "Reads and writes CSV (RFC 4180).",
    .actions = actions,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    api = host;
    return &desc;
}
