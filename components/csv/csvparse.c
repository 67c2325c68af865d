/*
 * The chunk-fed CSV reader and type inference; see csvparse.h.
 *
 * Every byte goes through step(): first the position (line, column) and
 * UTF-8 bookkeeping, then the state machine. The state is all the reader
 * remembers between bytes, which is what lets a chunk end anywhere. The
 * fields of the record being read are appended to one buffer, each followed
 * by a NUL, and described by offsets (the buffer moves as it grows); the
 * offsets become pointers only when the record is handed out.
 */
#include "csvparse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum state {
    S_RECORD,   /* at the start of a record */
    S_FIELD,    /* at the start of a field, after a delimiter */
    S_UNQUOTED, /* inside an unquoted field */
    S_QUOTED,   /* inside a quoted field */
    S_QUOTE,    /* a quote inside a quoted field: the end, or the first of
                   a doubled quote */
    S_AFTER     /* blanks after a closing quote (trim) */
};

struct rawfield {
    size_t off, len; /* in buf */
    int quoted;
    uint64_t line, column;
};

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
#define BOM_DONE 3

struct csv_parser {
    csv_parse_options o;
    csv_callbacks cb;
    void *ud;
    enum state st;
    int stopped; /* nonzero: the value feed and finish return from now on */
    uint64_t bytes;

    /* Position of the byte being read. */
    uint64_t line, col;
    int prev_cr;
    int bom; /* bytes of the BOM matched so far, or BOM_DONE */

    /* UTF-8: continuation bytes still expected and the range the next one
     * must fall in (narrower after E0, ED, F0, F4: no overlongs, no
     * surrogates, nothing past U+10FFFF); where the sequence began. */
    int u8_need;
    unsigned char u8_lo, u8_hi;
    uint64_t u8_line, u8_col;

    /* The record being read. */
    char *buf;
    size_t len, cap;
    struct rawfield *fields;
    csv_field *out;
    size_t nfields, capfields;
    size_t keep;       /* trim: end of the field's last non-blank byte */
    uint64_t rec_line; /* set when the record's first field begins */
    int blanks;        /* S_RECORD: blanks were dropped on this line */
    int has_err;
    csv_error err;
    size_t expected;
};

csv_parser *csv_parser_new(const csv_parse_options *o, const csv_callbacks *cb,
                           void *ud) {
    if (o->delimiter >= 0x80 || o->delimiter == '\r' || o->delimiter == '\n')
        return NULL;
    if (o->quote != CSV_NO_QUOTE &&
        (o->quote < 0 || o->quote >= 0x80 || o->quote == '\r' ||
         o->quote == '\n' || o->quote == o->delimiter))
        return NULL;
    csv_parser *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->o = *o;
    p->cb = *cb;
    p->ud = ud;
    p->st = S_RECORD;
    p->line = 1;
    p->expected = o->expected_fields;
    return p;
}

void csv_parser_free(csv_parser *p) {
    if (!p)
        return;
    free(p->buf);
    free(p->fields);
    free(p->out);
    free(p);
}

uint64_t csv_parser_bytes(const csv_parser *p) {
    return p->bytes;
}

static int is_blank(const csv_parser *p, unsigned char c) {
    return (c == ' ' || c == '\t') && c != p->o.delimiter;
}

static int reserve(csv_parser *p, size_t more) {
    if (p->cap - p->len >= more)
        return 0;
    if (more > SIZE_MAX / 2 - p->len)
        return CSV_ENOMEM;
    size_t cap = p->cap ? p->cap : 256;
    while (cap - p->len < more)
        cap *= 2;
    char *b = realloc(p->buf, cap);
    if (!b)
        return CSV_ENOMEM;
    p->buf = b;
    p->cap = cap;
    return 0;
}

static int put(csv_parser *p, unsigned char c) {
    if (p->len == p->cap && reserve(p, 1))
        return CSV_ENOMEM;
    p->buf[p->len++] = (char)c;
    return 0;
}

/* Starts a field at the current position. */
static int field_begin(csv_parser *p, int quoted) {
    if (p->nfields == p->capfields) {
        size_t cap = p->capfields ? p->capfields * 2 : 16;
        if (cap > SIZE_MAX / sizeof(struct rawfield))
            return CSV_ENOMEM;
        struct rawfield *f = realloc(p->fields, cap * sizeof(*f));
        if (!f)
            return CSV_ENOMEM;
        p->fields = f;
        csv_field *o = realloc(p->out, cap * sizeof(*o));
        if (!o)
            return CSV_ENOMEM;
        p->out = o;
        p->capfields = cap;
    }
    if (p->nfields == 0)
        p->rec_line = p->line;
    struct rawfield *f = &p->fields[p->nfields++];
    f->off = p->len;
    f->len = 0;
    f->quoted = quoted;
    f->line = p->line;
    f->column = p->col;
    p->keep = p->len;
    return 0;
}

static int field_end(csv_parser *p) {
    struct rawfield *f = &p->fields[p->nfields - 1];
    if (p->o.trim && !f->quoted)
        p->len = p->keep;
    f->len = p->len - f->off;
    return put(p, 0);
}

/* Records the record's first fault; later ones are consequences. */
static void flag(csv_parser *p, enum csv_error_code code, uint64_t line,
                 uint64_t column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void flag(csv_parser *p, enum csv_error_code code, uint64_t line,
                 uint64_t column, const char *fmt, ...) {
    va_list ap;
    if (p->has_err)
        return;
    p->has_err = 1;
    p->err.code = code;
    p->err.line = line;
    p->err.column = column;
    p->err.record_line = p->nfields ? p->rec_line : p->line;
    va_start(ap, fmt);
    vsnprintf(p->err.message, sizeof(p->err.message), fmt, ap);
    va_end(ap);
}

/* A byte as an error message shows it. */
static const char *show(unsigned char c, char *out, size_t n) {
    if (c == ' ')
        snprintf(out, n, "a space");
    else if (c == '\t')
        snprintf(out, n, "a tab");
    else if (c > ' ' && c < 0x7F)
        snprintf(out, n, "'%c'", c);
    else
        snprintf(out, n, "byte 0x%02X", c);
    return out;
}

static int record_end(csv_parser *p, uint64_t eline, uint64_t ecol) {
    int rc = 0;
    const struct rawfield *f0 = &p->fields[0];
    if (p->has_err) {
        rc = p->cb.on_error(p->ud, &p->err);
    } else if (p->nfields == 1 && f0->len == 0 && !f0->quoted &&
               p->o.skip_empty_lines) {
        /* an empty line */
    } else if (p->o.strict && p->expected && p->nfields != p->expected) {
        const struct rawfield *x =
            p->nfields > p->expected ? &p->fields[p->expected] : NULL;
        flag(p, CSV_EFIELDS, x ? x->line : eline, x ? x->column : ecol,
             "record has %zu field%s, expected %zu", p->nfields,
             p->nfields == 1 ? "" : "s", p->expected);
        rc = p->cb.on_error(p->ud, &p->err);
    } else {
        if (p->o.strict && !p->expected)
            p->expected = p->nfields;
        for (size_t i = 0; i < p->nfields; i++) {
            const struct rawfield *f = &p->fields[i];
            p->out[i].data = p->buf + f->off;
            p->out[i].len = f->len;
            p->out[i].quoted = f->quoted;
            p->out[i].line = f->line;
            p->out[i].column = f->column;
        }
        csv_record r = {p->out, p->nfields, p->rec_line};
        rc = p->cb.on_record(p->ud, &r);
    }
    p->len = 0;
    p->nfields = 0;
    p->has_err = 0;
    p->blanks = 0;
    p->st = S_RECORD;
    return rc;
}

/* Ends the field and the record at a line end (or the input's end), at
 * position eline:ecol. */
static int line_end(csv_parser *p, uint64_t eline, uint64_t ecol) {
    int rc = field_end(p);
    return rc ? rc : record_end(p, eline, ecol);
}

static int only_blanks(const csv_parser *p) {
    const struct rawfield *f = &p->fields[p->nfields - 1];
    for (size_t i = f->off; i < p->len; i++) {
        if (p->buf[i] != ' ' && p->buf[i] != '\t')
            return 0;
    }
    return 1;
}

/* Text where only the delimiter or a line end may follow a closing quote:
 * the record is malformed; c is kept as unquoted text from here. */
static int after_quote_text(csv_parser *p, unsigned char c) {
    char b[16];
    flag(p, CSV_EAFTERQUOTE, p->line, p->col,
         "%s after a closing quote, expected the delimiter or a line end%s",
         show(c, b, sizeof(b)),
         is_blank(p, c) && !p->o.trim
             ? " (trim allows blanks around a quoted field)"
             : "");
    p->st = S_UNQUOTED;
    p->keep = p->len + 1;
    return put(p, c);
}

/* A byte after a quoted field's closing quote. */
static int closed(csv_parser *p, unsigned char c, int eol) {
    if (c == p->o.delimiter) {
        p->st = S_FIELD;
        return field_end(p);
    }
    if (eol)
        return line_end(p, p->line, p->col);
    if (p->o.trim && is_blank(p, c)) {
        p->st = S_AFTER;
        return 0;
    }
    return after_quote_text(p, c);
}

/* The state machine, for one byte at the current position. */
static int structure(csv_parser *p, unsigned char c) {
    int eol = c == '\r' || c == '\n';
    int quote = p->o.quote != CSV_NO_QUOTE && c == (unsigned char)p->o.quote;
    int rc;

    switch (p->st) {
    case S_RECORD:
    case S_FIELD:
        if (c == p->o.delimiter) {
            if ((rc = field_begin(p, 0)) || (rc = field_end(p)))
                return rc;
            p->st = S_FIELD;
            return 0;
        }
        if (eol) {
            if ((rc = field_begin(p, 0)))
                return rc;
            return line_end(p, p->line, p->col);
        }
        if (p->o.trim && is_blank(p, c)) {
            p->blanks = 1;
            return 0;
        }
        if ((rc = field_begin(p, quote)))
            return rc;
        if (quote) {
            p->st = S_QUOTED;
            return 0;
        }
        p->st = S_UNQUOTED;
        p->keep = p->len + 1;
        return put(p, c);
    case S_UNQUOTED:
        if (c == p->o.delimiter) {
            p->st = S_FIELD;
            return field_end(p);
        }
        if (eol)
            return line_end(p, p->line, p->col);
        if (quote) {
            flag(p, CSV_EQUOTE, p->line, p->col,
                 "quote character in an unquoted field (a field with a "
                 "quote must be quoted, and the quote doubled)%s",
                 !p->o.trim && only_blanks(p)
                     ? "; trim allows blanks before a quoted field"
                     : "");
        }
        if (!is_blank(p, c))
            p->keep = p->len + 1;
        return put(p, c);
    case S_QUOTED:
        if (quote) {
            p->st = S_QUOTE;
            return 0;
        }
        return put(p, c);
    case S_QUOTE:
        if (quote) {
            p->st = S_QUOTED;
            return put(p, c);
        }
        return closed(p, c, eol); /* the quote closed the field */
    case S_AFTER:
        return closed(p, c, eol);
    }
    return 0;
}

static int step(csv_parser *p, unsigned char c) {
    int rc;
    if (c == '\n' && p->prev_cr) {
        /* The LF of a CRLF: the CR already ended the line (and, outside
         * quotes, the record). */
        p->prev_cr = 0;
        return p->st == S_QUOTED ? put(p, c) : 0;
    }
    p->prev_cr = c == '\r';

    if (p->u8_need) {
        if (c >= p->u8_lo && c <= p->u8_hi) {
            /* A continuation byte: same column, never structure. */
            p->u8_need--;
            p->u8_lo = 0x80;
            p->u8_hi = 0xBF;
            return structure(p, c);
        }
        flag(p, CSV_EUTF8, p->u8_line, p->u8_col,
             "invalid UTF-8: the sequence is cut short");
        p->u8_need = 0;
    }
    p->col++;
    if (c >= 0x80) {
        int need = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, lo = c == 0xE0 ? 0xA0 : 0x80,
            hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, lo = c == 0xF0 ? 0x90 : 0x80,
            hi = c == 0xF4 ? 0x8F : 0xBF;
        if (need) {
            p->u8_need = need;
            p->u8_lo = lo;
            p->u8_hi = hi;
            p->u8_line = p->line;
            p->u8_col = p->col;
        } else {
            flag(p, CSV_EUTF8, p->line, p->col,
                 "invalid UTF-8: byte 0x%02X cannot start a character", c);
        }
    }
    rc = structure(p, c);
    if (c == '\r' || c == '\n') {
        p->line++;
        p->col = 0;
    }
    return rc;
}

static int run(csv_parser *p, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = step(p, s[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int csv_parser_feed(csv_parser *p, const void *data, size_t len) {
    const unsigned char *s = data;
    int rc;
    if (p->stopped)
        return p->stopped;
    p->bytes += len;
    while (p->bom != BOM_DONE && len) {
        if (*s == bom[p->bom]) {
            s++;
            len--;
            if (++p->bom == 3)
                p->bom = BOM_DONE;
            continue;
        }
        /* Not a BOM after all: what matched is text. */
        int matched = p->bom;
        p->bom = BOM_DONE;
        if ((rc = run(p, bom, (size_t)matched)))
            return p->stopped = rc;
    }
    if ((rc = run(p, s, len)))
        return p->stopped = rc;
    return 0;
}

int csv_parser_finish(csv_parser *p) {
    int rc = 0;
    if (p->stopped)
        return p->stopped;
    if (p->bom != BOM_DONE) {
        int matched = p->bom;
        p->bom = BOM_DONE;
        if ((rc = run(p, bom, (size_t)matched)))
            return p->stopped = rc;
    }
    if (p->u8_need) {
        flag(p, CSV_EUTF8, p->u8_line, p->u8_col,
             "invalid UTF-8: the input ends inside a character");
        p->u8_need = 0;
    }
    switch (p->st) {
    case S_RECORD:
        if (p->blanks && !(rc = field_begin(p, 0)))
            rc = line_end(p, p->line, p->col + 1);
        break;
    case S_FIELD:
        if (!(rc = field_begin(p, 0)))
            rc = line_end(p, p->line, p->col + 1);
        break;
    case S_QUOTED: {
        const struct rawfield *f = &p->fields[p->nfields - 1];
        flag(p, CSV_EUNTERMINATED, f->line, f->column,
             "quoted field not closed before the end of the input");
        rc = line_end(p, p->line, p->col + 1);
        break;
    }
    case S_UNQUOTED:
    case S_QUOTE:
    case S_AFTER:
        rc = line_end(p, p->line, p->col + 1);
        break;
    }
    if (rc)
        p->stopped = rc;
    return rc;
}

/* ---- type inference ---- */

static int ascii_ieq(const char *s, size_t n, const char *word) {
    size_t i;
    for (i = 0; i < n && word[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return i == n && !word[i];
}

csv_kind csv_infer(const char *s, size_t n, int quoted, int64_t *i, double *d) {
    size_t k = 0;
    int frac = 0;
    if (quoted)
        return CSV_KIND_STRING;
    if (n == 0)
        return CSV_KIND_NULL;
    if (ascii_ieq(s, n, "true"))
        return CSV_KIND_TRUE;
    if (ascii_ieq(s, n, "false"))
        return CSV_KIND_FALSE;

    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (s[k] == '-')
        k++;
    if (k == n || s[k] < '0' || s[k] > '9')
        return CSV_KIND_STRING;
    if (s[k] == '0' && k + 1 < n && s[k + 1] >= '0' && s[k + 1] <= '9')
        return CSV_KIND_STRING; /* a leading zero: an identifier, "007" */
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k < n && s[k] == '.') {
        frac = 1;
        if (++k == n || s[k] < '0' || s[k] > '9')
            return CSV_KIND_STRING;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        frac = 1;
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k == n || s[k] < '0' || s[k] > '9')
            return CSV_KIND_STRING;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (k != n)
        return CSV_KIND_STRING;

    /* s is NUL terminated after n (csv_field), but a copy keeps this
     * usable on any buffer; numbers longer than that stay text. */
    char tmp[64];
    char *end;
    if (n >= sizeof(tmp))
        return CSV_KIND_STRING;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    errno = 0;
    if (!frac) {
        long long v = strtoll(tmp, &end, 10);
        if (errno || end != tmp + n)
            return CSV_KIND_STRING; /* past 64 bits: kept exact as text */
        *i = (int64_t)v;
        return CSV_KIND_INTEGER;
    }
    double v = strtod(tmp, &end);
    if (errno == ERANGE && (v > 1 || v < -1))
        return CSV_KIND_STRING; /* overflow */
    if (end != tmp + n || v != v || v - v != 0)
        return CSV_KIND_STRING;
    *d = v;
    return CSV_KIND_REAL;
}
