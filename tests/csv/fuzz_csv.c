/*
 * Fuzz target for the csv component's reader and field writer
 * (components/csv/csvparse.c, csvwrite.c).
 *
 * The first two bytes choose the options:
 *   byte 0: bits 0-2 the delimiter (, ; tab | space : x NUL), bits 3-4 the
 *           quote (" ' none `), bit 5 trim, bit 6 skip_empty_lines, bit 7
 *           strict
 *   byte 1: bits 0-5 the chunk size minus one, bit 6 expected_fields = 2,
 *           bit 7 stop at the first error
 * and the rest is the CSV. Options the reader refuses (delimiter equal to
 * the quote) are skipped.
 *
 * It checks that:
 *   - the input fed at once and fed in chunks gives the same records and
 *     errors (and the same stop);
 *   - every field handed out is NUL terminated and valid UTF-8 by
 *     jansson's own check, every position is 1-based and not past the
 *     input's lines;
 *   - the records, written back with csv_write_field (formula escaping
 *     off) and read again without trim, are the same fields.
 */
#include "csvparse.h"
#include "csvwrite.h"
#include "fuzz.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char delimiters[8] = {',', ';', '\t', '|',
                                            ' ', ':', 'x',  0};
static const int quotes[4] = {'"', '\'', CSV_NO_QUOTE, '`'};

typedef struct run {
    csv_buf log;         /* records and errors, serialised */
    csv_buf rewritten;   /* the records written back */
    csv_buf fields_only; /* the fields, without positions */
    csv_write_options w;
    int stop_on_error;
    uint64_t max_line; /* lines in the input */
    size_t nrecords;
} run;

static void add(csv_buf *b, const void *s, size_t n) {
    if (csv_buf_add(b, s, n))
        abort();
}

static void add_u64(csv_buf *b, uint64_t v) {
    add(b, &v, sizeof(v));
}

static int on_record(void *ud, const csv_record *r) {
    run *x = ud;
    if (r->nfields == 0 || r->line == 0 || r->line > x->max_line)
        abort();
    add(&x->log, "R", 1);
    add_u64(&x->log, r->line);
    add_u64(&x->log, r->nfields);
    add(&x->fields_only, "R", 1);
    add_u64(&x->fields_only, r->nfields);
    for (size_t i = 0; i < r->nfields; i++) {
        const csv_field *f = &r->fields[i];
        if (f->data[f->len] != 0 || f->line < r->line || f->line == 0 ||
            f->line > x->max_line || f->column == 0)
            abort();
        json_t *s = json_stringn(f->data, f->len);
        if (!s)
            abort(); /* the reader passed on bytes jansson calls invalid */
        json_decref(s);

        int64_t iv;
        double dv;
        csv_kind k = csv_infer(f->data, f->len, f->quoted, &iv, &dv);
        if (k == CSV_KIND_REAL && !isfinite(dv))
            abort();
        if (f->quoted && k != CSV_KIND_STRING)
            abort();

        add_u64(&x->log, f->len);
        add_u64(&x->log, (uint64_t)f->quoted);
        add_u64(&x->log, f->line);
        add_u64(&x->log, f->column);
        add(&x->log, f->data, f->len);
        add_u64(&x->fields_only, f->len);
        add(&x->fields_only, f->data, f->len);

        if (i)
            add(&x->rewritten, &x->w.delimiter, 1);
        if (csv_write_field(&x->rewritten, f->data, f->len, 1, &x->w))
            abort();
    }
    /* A lone empty field would be an empty line. */
    if (r->nfields == 1 && r->fields[0].len == 0) {
        add(&x->rewritten, &x->w.quote, 1);
        add(&x->rewritten, &x->w.quote, 1);
    }
    add(&x->rewritten, "\r\n", 2);
    x->nrecords++;
    return 0;
}

static int on_error(void *ud, const csv_error *e) {
    run *x = ud;
    if (e->line == 0 || e->column == 0 || e->line > x->max_line ||
        e->record_line == 0 || e->record_line > e->line || !e->message[0] ||
        e->code < CSV_EQUOTE || e->code > CSV_EUTF8)
        abort();
    add(&x->log, "E", 1);
    add_u64(&x->log, e->line);
    add_u64(&x->log, e->column);
    add_u64(&x->log, e->record_line);
    add_u64(&x->log, (uint64_t)e->code);
    add(&x->log, e->message, strlen(e->message));
    return x->stop_on_error ? 5 : 0;
}

static const csv_callbacks cbs = {on_record, on_error};

static void run_free(run *x) {
    csv_buf_free(&x->log);
    csv_buf_free(&x->rewritten);
    csv_buf_free(&x->fields_only);
}

/* Parses data fed in pieces of `piece` bytes (0: at once) into x; returns
 * the final status. */
static int parse(const csv_parse_options *o, const uint8_t *data, size_t size,
                 size_t piece, run *x) {
    csv_parser *p = csv_parser_new(o, &cbs, x);
    int rc = 0;
    if (!p)
        abort();
    if (piece == 0) {
        rc = csv_parser_feed(p, data, size);
    } else {
        for (size_t i = 0; i < size && !rc; i += piece)
            rc = csv_parser_feed(p, data + i,
                                 size - i < piece ? size - i : piece);
    }
    if (!rc)
        rc = csv_parser_finish(p);
    if (csv_parser_bytes(p) > size)
        abort();
    csv_parser_free(p);
    if (rc == CSV_ENOMEM)
        abort();
    add(&x->log, &rc, sizeof(rc));
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint8_t b0 = data[0], b1 = data[1];
    data += 2;
    size -= 2;

    csv_parse_options o = {0};
    o.delimiter = delimiters[b0 & 7];
    o.quote = quotes[(b0 >> 3) & 3];
    o.trim = (b0 >> 5) & 1;
    o.skip_empty_lines = (b0 >> 6) & 1;
    o.strict = (b0 >> 7) & 1;
    o.expected_fields = (b1 >> 6) & 1 ? 2 : 0;
    if (o.quote == o.delimiter)
        return 0;
    size_t piece = (size_t)(b1 & 63) + 1;

    uint64_t lines = 1;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n' || data[i] == '\r')
            lines++;
    }

    run whole = {0}, chunked = {0};
    whole.stop_on_error = chunked.stop_on_error = (b1 >> 7) & 1;
    whole.max_line = chunked.max_line = lines;
    whole.w.delimiter = chunked.w.delimiter = o.delimiter;
    whole.w.quote = chunked.w.quote = o.quote == CSV_NO_QUOTE
                                          ? (o.delimiter == '"' ? '\'' : '"')
                                          : (unsigned char)o.quote;

    int rc1 = parse(&o, data, size, 0, &whole);
    int rc2 = parse(&o, data, size, piece, &chunked);
    if (rc1 != rc2 || whole.log.len != chunked.log.len ||
        memcmp(whole.log.data, chunked.log.data, whole.log.len) != 0)
        abort();

    /* Written back and read again (no trim, nothing skipped, no count
     * check): the same fields. */
    csv_parse_options again = {0};
    again.delimiter = whole.w.delimiter;
    again.quote = whole.w.quote;
    run reread = {0};
    reread.w = whole.w;
    reread.max_line = 1;
    for (size_t i = 0; i < whole.rewritten.len; i++) {
        if (whole.rewritten.data[i] == '\n' || whole.rewritten.data[i] == '\r')
            reread.max_line++;
    }
    int rc3 = parse(&again, (const uint8_t *)whole.rewritten.data,
                    whole.rewritten.len, 0, &reread);
    if (rc3 != 0 || reread.nrecords != whole.nrecords ||
        reread.fields_only.len != whole.fields_only.len ||
        (whole.fields_only.len &&
         memcmp(reread.fields_only.data, whole.fields_only.data,
                whole.fields_only.len) != 0))
        abort();

    /* The formula guard on the same fields: only adds a prefix. */
    csv_write_options guarded = whole.w;
    guarded.escape_formulas = 1;
    csv_buf g = {0};
    if (size && csv_write_field(&g, (const char *)data, size, 1, &guarded))
        abort();
    if (size && g.len < size)
        abort();
    csv_buf_free(&g);

    run_free(&whole);
    run_free(&chunked);
    run_free(&reread);
    return 0;
}

void fuzz_target_cleanup(void) {}
