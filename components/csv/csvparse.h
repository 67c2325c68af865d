/*
 * csvparse: the csv component's RFC 4180 reader, fed in chunks, and the
 * inference of JSON types from field text.
 *
 * Owns: splitting bytes into records and fields, line and column
 * positions, UTF-8 validation, the errors a record can have. Must not
 * touch: the ferry API, jansson, I/O. It is plain C so that the tests and
 * the fuzz target drive it directly (tests/csv).
 *
 * The reader is a byte-at-a-time state machine. csv_parser_feed accepts any
 * split of the input (a chunk may end inside a CRLF, a doubled quote, a
 * UTF-8 sequence or the byte order mark) and calls on_record for each
 * complete record, so memory holds one record, never the input.
 *
 * What it reads: fields separated by the delimiter; records ended by CRLF,
 * LF or a lone CR (all three may be mixed); a field that starts with the
 * quote character runs to the matching quote, may hold delimiters and line
 * breaks (kept as they are), and writes a quote as two; a UTF-8 byte order
 * mark at the very start is dropped. Positions are 1-based: lines are
 * physical lines (a quoted line break starts a new one), columns count
 * characters (UTF-8 sequences) from the start of the line.
 *
 * A malformed record is reported once, by its first fault, through
 * on_error when the record ends, and is never passed to on_record. Until
 * then the reader carries on leniently (a stray quote is kept as text), so
 * that the next record starts where a reader of the file would expect.
 */
#ifndef FERRY_CSV_CSVPARSE_H
#define FERRY_CSV_CSVPARSE_H

#include <stddef.h>
#include <stdint.h>

/* csv_parse_options.quote: no quote character, every byte is text. */
#define CSV_NO_QUOTE (-1)

/* delimiter and quote are ASCII (below 0x80), neither CR nor LF, and
 * differ from each other. */
typedef struct csv_parse_options {
    unsigned char delimiter; /* ',' */
    int quote;               /* '"', or CSV_NO_QUOTE */
    /* Drop spaces and tabs (other than the delimiter) around fields, and
     * allow them around a quoted field. A line of nothing else is then an
     * empty line. */
    int trim;
    /* Drop empty lines; otherwise each is a record of one empty field. */
    int skip_empty_lines;
    /* Every record must have expected_fields fields (0: as many as the
     * first record that is passed on). */
    int strict;
    size_t expected_fields;
} csv_parse_options;

typedef struct csv_field {
    const char *data; /* borrowed until on_record returns; data[len] == 0 */
    size_t len;       /* may hold NUL bytes; always valid UTF-8 */
    int quoted;
    uint64_t line, column; /* where the field starts */
} csv_field;

typedef struct csv_record {
    const csv_field *fields; /* borrowed until on_record returns */
    size_t nfields;          /* at least 1 */
    uint64_t line;           /* the line the record starts on */
} csv_record;

enum csv_error_code {
    CSV_EQUOTE = 1,    /* a quote character inside an unquoted field */
    CSV_EAFTERQUOTE,   /* text between a closing quote and the delimiter */
    CSV_EUNTERMINATED, /* the input ends inside a quoted field */
    CSV_EFIELDS,       /* strict: the wrong number of fields */
    CSV_EUTF8          /* bytes that are not UTF-8 */
};

typedef struct csv_error {
    enum csv_error_code code;
    uint64_t line, column; /* of the fault */
    uint64_t record_line;  /* the line the record starts on */
    char message[160];     /* what is wrong, without the position */
} csv_error;

typedef struct csv_callbacks {
    /* A complete, well-formed record. Returns 0 to go on; any other value
     * stops the parse and is returned by feed or finish. */
    int (*on_record)(void *ud, const csv_record *r);
    /* A malformed record (dropped). Returns 0 to go on with the next
     * record; any other value stops the parse and is returned. */
    int (*on_error)(void *ud, const csv_error *e);
} csv_callbacks;

/* Returned by feed and finish when memory runs out. Callbacks must not
 * return it. */
#define CSV_ENOMEM (-1000)

typedef struct csv_parser csv_parser;

/* A new parser; o and cb are copied, ud is passed to the callbacks.
 * Returns NULL out of memory or if o breaks the rules above. */
csv_parser *csv_parser_new(const csv_parse_options *o, const csv_callbacks *cb,
                           void *ud);
/* Parses len more bytes of input (data borrowed for the call). Returns 0,
 * CSV_ENOMEM or a callback's stop value; after a nonzero return the parser
 * only returns that value again. */
int csv_parser_feed(csv_parser *p, const void *data, size_t len);
/* Ends the input: completes the last record (which needs no line end).
 * Returns as csv_parser_feed. */
int csv_parser_finish(csv_parser *p);
/* Bytes fed so far. */
uint64_t csv_parser_bytes(const csv_parser *p);
void csv_parser_free(csv_parser *p);

/* ---- type inference ---- */

typedef enum csv_kind {
    CSV_KIND_STRING,
    CSV_KIND_NULL,
    CSV_KIND_TRUE,
    CSV_KIND_FALSE,
    CSV_KIND_INTEGER,
    CSV_KIND_REAL
} csv_kind;

/*
 * What a field holds when types are inferred. A quoted field is always a
 * string. Unquoted: empty is null; true/false in any case are booleans; a
 * number as JSON writes it (no leading zeros, no '+', no leading or
 * trailing '.') is an integer if it has no fraction or exponent and fits
 * 64 bits, else a real if finite; anything else, "007" and "1e999"
 * included, stays a string. *i or *d receive the number.
 */
csv_kind csv_infer(const char *s, size_t n, int quoted, int64_t *i, double *d);

#endif
