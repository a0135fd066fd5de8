/*
 * CSV connector: reads a company list from an RFC 4180 file into records.
 * The first stage of the data flow for file sources. The file is read in
 * chunks through one bounded buffer; a bad row becomes a reject with its
 * line number, and only what makes the rest unreadable fails the source.
 */
#include "acctmap/connector.h"
#include "acctmap/parse.h"
#include "connectors/rows.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <utf8proc.h>

/*
 * Limits. They can be lowered at compile time so that the fuzz target
 * reaches the refill, growth and skip paths with small inputs.
 */
#ifndef CSV_CHUNK
#define CSV_CHUNK (1024 * 1024) /* first buffer size and usual read size */
#endif
#ifndef CSV_FIELD_MAX
#define CSV_FIELD_MAX (1024 * 1024)
#endif
#ifndef CSV_ROW_MAX
#define CSV_ROW_MAX (4 * 1024 * 1024)
#endif
#ifndef CSV_COLUMNS_MAX
#define CSV_COLUMNS_MAX 4096
#endif
#ifndef CSV_BATCH_ROWS
#define CSV_BATCH_ROWS 4096
#endif

/* A row of CSV_ROW_MAX bytes plus its "\r\n" fits; anything longer is skipped. */
#define CSV_BUF_MAX ((size_t)CSV_ROW_MAX + 2)

/* How the limits read in messages: whole MiB or KiB, or bytes. */
#define LIMIT_TEXT_LEN 32

/* The one exported symbol, defined at the end of this file. */
extern const am_connector_ops am_connector_csv;

/* Our required columns (rows.h), as messages list them. */
#define REQUIRED_LIST "id,name,domain,tax_id,country,status"

/* Where the scanner is inside the current row. */
enum scan_state {
    S_FIELD_START, /* before a field; leading blanks are skipped here */
    S_UNQUOTED,    /* in a field that did not start with a quote */
    S_QUOTED,      /* inside quotes */
    S_QUOTE_SEEN,  /* just after a quote inside quotes: "" or the closing one */
    S_AFTER_QUOTE  /* after the closing quote, before the delimiter */
};

/* What is wrong with a row, found while scanning it. */
enum row_error {
    ROW_OK,
    ROW_TOO_LONG,   /* over CSV_ROW_MAX: its bytes were skipped, not kept */
    ROW_AFTER_QUOTE /* text between a closing quote and the delimiter */
};

#define F_QUOTED 1u
#define F_ESCAPED 2u /* quoted with "" inside: must be unescaped */

/* One field of the current row: offsets from the row start. */
typedef struct csv_span {
    uint32_t off;
    uint32_t len;
    uint32_t flags;
} csv_span;

typedef struct csv_source {
    am_source base;   /* first: an am_source * points here */
    const char *path; /* as written in the config, for messages; borrowed from it */
    char *open_path;  /* resolved against the config's directory */
    int fd;
    char delim;
    const char *header_name[AM_COL_COUNT]; /* from "columns", or our own name */
    size_t column_at[AM_COL_COUNT];        /* field index in the file, SIZE_MAX when absent */
    size_t header_fields;

    /* Buffered bytes are buf[0, end); the current row starts at row_start. */
    char *buf;
    size_t cap;
    size_t end;
    bool eof;
    bool failed; /* the source is unreadable from here; base.last says why */
    bool done;

    /* Scanner state for the current row. */
    enum scan_state state;
    size_t pos;
    size_t row_start;
    size_t fstart; /* content start of the current field */
    size_t fend;   /* content end of a quoted field (its closing quote) */
    uint32_t fflags;
    size_t nfields;
    uint64_t row_nl;     /* newlines inside quotes so far in this row */
    uint64_t line;       /* physical line of the next unread row */
    uint64_t row_line;   /* physical line where the current row starts */
    uint64_t quote_line; /* line of the last opening quote, for "unterminated" */
    bool skipping;       /* the row outgrew the buffer: bytes are scanned and dropped */
    enum row_error row_error;
    size_t error_field; /* field index for ROW_AFTER_QUOTE */
    size_t long_field;  /* first field over CSV_FIELD_MAX, SIZE_MAX when none */
    csv_span *spans;    /* CSV_COLUMNS_MAX entries */
} csv_source;

/* ---- small helpers ---------------------------------------------------------- */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static void limit_text(char out[LIMIT_TEXT_LEN], size_t bytes)
{
    if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0) {
        snprintf(out, LIMIT_TEXT_LEN, "%zu MiB", bytes / (1024 * 1024));
    } else if (bytes >= 1024 && bytes % 1024 == 0) {
        snprintf(out, LIMIT_TEXT_LEN, "%zu KiB", bytes / 1024);
    } else {
        snprintf(out, LIMIT_TEXT_LEN, "%zu bytes", bytes);
    }
}

static uint64_t count_newlines(const char *s, size_t len)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        n += s[i] == '\n';
    }
    return n;
}

/* ---- config ----------------------------------------------------------------- */

typedef struct columns_ctx {
    csv_source *s;
    const am_source_config *cfg;
} columns_ctx;

static am_status take_column(void *ctx_, const char *key, const char *value, am_error *err)
{
    columns_ctx *ctx = ctx_;
    const char *v = value;
    size_t vlen = strlen(value);
    size_t k;
    am_status rc = am_row_column_of(&k, key, ctx->cfg->where, err);

    if (rc) {
        return rc;
    }
    am_row_trim(&v, &vlen);
    if (vlen == 0) {
        return am_error_set(err, AM_ECONFIG,
                            "%s.columns.%s: empty; give the column's name in the file's header",
                            ctx->cfg->where, key);
    }
    ctx->s->header_name[k] = value;
    return AM_OK;
}

static am_status read_config(csv_source *s, const am_source_config *cfg, am_error *err)
{
    const char *delim = NULL;
    const char *base = cfg->base_dir;
    columns_ctx ctx = {s, cfg};
    size_t k, plen, blen;
    am_status rc;

    rc = am_source_config_string(&s->path, cfg, "path", true, err);
    if (rc) {
        return rc;
    }
    if (!s->path[0]) {
        return am_error_set(err, AM_ECONFIG, "%s.path: empty; give the CSV file's path",
                            cfg->where);
    }
    rc = am_source_config_string(&delim, cfg, "delimiter", false, err);
    if (rc) {
        return rc;
    }
    if (!delim) {
        s->delim = '\0'; /* detected from the header */
    } else if (strcmp(delim, ",") == 0 || strcmp(delim, ";") == 0 || strcmp(delim, "\t") == 0) {
        s->delim = delim[0];
    } else if (strcmp(delim, "tab") == 0) {
        s->delim = '\t';
    } else {
        return am_error_set(err, AM_ECONFIG,
                            "%s.delimiter: \"%.16s\" is not supported; use \",\", \";\" or "
                            "\"tab\", or leave it out to detect it from the header",
                            cfg->where, delim);
    }
    for (k = 0; k < AM_COL_COUNT; k++) {
        s->header_name[k] = am_row_column_names[k];
    }
    rc = am_source_config_each_pair(cfg, "columns", take_column, &ctx, err);
    if (rc) {
        return rc;
    }

    plen = strlen(s->path);
    if (s->path[0] == '/' || !base || !base[0] || strcmp(base, ".") == 0) {
        s->open_path = strdup(s->path);
    } else {
        blen = strlen(base);
        if (base[blen - 1] == '/') {
            blen--;
        }
        s->open_path = malloc(blen + 1 + plen + 1);
        if (s->open_path) {
            memcpy(s->open_path, base, blen);
            s->open_path[blen] = '/';
            memcpy(s->open_path + blen + 1, s->path, plen + 1);
        }
    }
    if (!s->open_path) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", s->path);
    }
    snprintf(s->base.label, sizeof(s->base.label), "%s", s->path);
    return AM_OK;
}

/* ---- reading ---------------------------------------------------------------- */

/*
 * Make room and read more bytes after buf[end]. The current row is moved to
 * the front; a row that fills the largest buffer turns on skipping, which
 * drops its bytes as they are scanned. Sets `eof` at the end of the file.
 */
static am_status refill(csv_source *s, am_error *err)
{
    ssize_t n;

    if (s->skipping) {
        s->row_start = s->pos = s->fstart = s->fend = s->end = 0;
    } else if (s->row_start > 0) {
        size_t shift = s->row_start;
        memmove(s->buf, s->buf + shift, s->end - shift);
        s->end -= shift;
        s->pos -= shift;
        s->fstart -= shift;
        s->fend -= shift;
        s->row_start = 0;
    } else if (s->end == s->cap) {
        if (s->cap < CSV_BUF_MAX) {
            size_t cap = s->cap * 2 < CSV_BUF_MAX ? s->cap * 2 : CSV_BUF_MAX;
            char *grown = realloc(s->buf, cap);
            if (!grown) {
                return am_error_set(err, AM_ENOMEM, "%s: out of memory for a %zu-byte row", s->path,
                                    cap);
            }
            s->buf = grown;
            s->cap = cap;
        } else {
            s->skipping = true;
            s->row_start = s->pos = s->fstart = s->fend = s->end = 0;
        }
    }
    do {
        n = read(s->fd, s->buf + s->end, s->cap - s->end);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return am_error_set(err, AM_EIO, "%s: cannot read: %s; check the file", s->path,
                            strerror(errno));
    }
    if (n == 0) {
        s->eof = true;
    }
    s->end += (size_t)n;
    return AM_OK;
}

/* ---- scanning --------------------------------------------------------------- */

static void begin_row(csv_source *s)
{
    s->row_start = s->fstart = s->fend = s->pos;
    s->row_line = s->line;
    s->state = S_FIELD_START;
    s->fflags = 0;
    s->nfields = 0;
    s->row_nl = 0;
    s->skipping = false;
    s->row_error = ROW_OK;
    s->long_field = SIZE_MAX;
}

/* The field [start, stop) of the buffer ended. While skipping only fields are counted. */
static void end_field(csv_source *s, size_t start, size_t stop)
{
    if (!s->skipping) {
        size_t len = stop - start;

        if (len > CSV_FIELD_MAX && s->long_field == SIZE_MAX) {
            s->long_field = s->nfields;
        }
        if (s->nfields < CSV_COLUMNS_MAX) {
            csv_span *sp = &s->spans[s->nfields];
            sp->off = (uint32_t)(start - s->row_start);
            sp->len = (uint32_t)len;
            sp->flags = s->fflags;
        }
    }
    s->nfields++;
    s->fflags = 0;
    s->state = S_FIELD_START;
}

static void set_row_error(csv_source *s, enum row_error e, size_t field)
{
    if (s->row_error == ROW_OK) {
        s->row_error = e;
        s->error_field = field;
    }
}

/*
 * Scan buffered bytes from s->pos. Returns true when a row ended at a
 * newline (s->pos is then past it), false when the buffer ran out first;
 * calling again after a refill continues where it stopped.
 */
static bool scan_row(csv_source *s)
{
    const char *buf = s->buf;
    const char delim = s->delim;
    const size_t end = s->end;
    size_t pos = s->pos;

    while (pos < end) {
        char c = buf[pos];

        switch (s->state) {
        case S_FIELD_START:
            if (c == delim) {
                end_field(s, pos, pos);
                pos++;
            } else if (c == '\n') {
                end_field(s, pos, pos);
                s->pos = pos + 1;
                return true;
            } else if (c == '"') {
                s->state = S_QUOTED;
                s->fflags = F_QUOTED;
                s->fstart = ++pos;
                s->quote_line = s->row_line + s->row_nl;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                pos++; /* blanks before an opening quote are allowed */
            } else {
                s->state = S_UNQUOTED;
                s->fstart = pos;
            }
            break;
        case S_UNQUOTED:
            /* The hot loop: most fields are short and unquoted. A quote here is data. */
            while (pos < end && buf[pos] != delim && buf[pos] != '\n') {
                pos++;
            }
            if (pos < end) {
                end_field(s, s->fstart, pos);
                if (buf[pos++] == '\n') {
                    s->pos = pos;
                    return true;
                }
            }
            break;
        case S_QUOTED: {
            const char *q = memchr(buf + pos, '"', end - pos);
            size_t stop = q ? (size_t)(q - buf) : end;

            s->row_nl += count_newlines(buf + pos, stop - pos);
            if (q) {
                s->fend = stop;
                s->state = S_QUOTE_SEEN;
                pos = stop + 1;
            } else {
                pos = end;
            }
            break;
        }
        case S_QUOTE_SEEN:
            if (c == '"') {
                s->fflags |= F_ESCAPED;
                s->state = S_QUOTED;
                pos++;
            } else {
                s->state = S_AFTER_QUOTE;
            }
            break;
        case S_AFTER_QUOTE:
            if (c == delim) {
                end_field(s, s->fstart, s->fend);
                pos++;
            } else if (c == '\n') {
                end_field(s, s->fstart, s->fend);
                s->pos = pos + 1;
                return true;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                pos++;
            } else {
                /* "abc"def: keep scanning to the delimiter; the row is rejected. */
                set_row_error(s, ROW_AFTER_QUOTE, s->nfields);
                s->state = S_UNQUOTED;
                s->fstart = pos;
            }
            break;
        }
    }
    s->pos = pos;
    return false;
}

/* A row with one unquoted field of blanks is a blank line. */
static bool row_is_blank(const csv_source *s)
{
    const char *p;
    size_t n;

    if (s->nfields != 1 || s->skipping || (s->spans[0].flags & F_QUOTED)) {
        return false;
    }
    p = s->buf + s->row_start + s->spans[0].off;
    n = s->spans[0].len;
    am_row_trim(&p, &n);
    return n == 0;
}

/*
 * The next non-blank row into the scanner state. *got is false at the end of
 * the file. Fails only when the rest of the file cannot be read.
 */
static am_status next_row(csv_source *s, bool *got, am_error *err)
{
    am_status rc;

    *got = false;
    begin_row(s);
    for (;;) {
        if (scan_row(s)) {
            s->line += s->row_nl + 1;
            if (row_is_blank(s)) {
                begin_row(s);
                continue;
            }
            *got = true;
            return AM_OK;
        }
        if (s->eof) {
            break;
        }
        rc = refill(s, err);
        if (rc) {
            return rc;
        }
        if (s->skipping) {
            s->row_error = ROW_TOO_LONG; /* overrides any other error of this row */
        }
    }

    /* End of file: finish a last row that has no newline. */
    switch (s->state) {
    case S_QUOTED:
        return am_error_set(err, AM_EINPUT,
                            "%s:%" PRIu64 ": unterminated quoted field starting here; close the "
                            "quote",
                            s->path, s->quote_line);
    case S_FIELD_START:
        if (s->nfields == 0 && !s->skipping) {
            return AM_OK; /* nothing after the last newline but blanks */
        }
        end_field(s, s->pos, s->pos);
        break;
    case S_UNQUOTED:
        end_field(s, s->fstart, s->pos);
        break;
    case S_QUOTE_SEEN:
    case S_AFTER_QUOTE:
        end_field(s, s->fstart, s->fend);
        break;
    }
    s->line += s->row_nl;
    *got = !row_is_blank(s);
    return AM_OK;
}

/* ---- header ----------------------------------------------------------------- */

/*
 * Count , ; and TAB outside quotes on the first non-blank line of `p`.
 * Returns true when that line ended inside the bytes given.
 */
static bool count_delimiters(const char *p, size_t len, size_t counts[3])
{
    bool quoted = false, content = false;
    size_t i;

    counts[0] = counts[1] = counts[2] = 0;
    for (i = 0; i < len; i++) {
        char c = p[i];
        if (c == '"') {
            quoted = !quoted;
            content = true;
        } else if (quoted) {
            continue;
        } else if (c == '\n') {
            if (content) {
                return true;
            }
            counts[0] = counts[1] = counts[2] = 0; /* a blank line before the header */
        } else if (c == ',') {
            counts[0]++;
            content = true;
        } else if (c == ';') {
            counts[1]++;
            content = true;
        } else if (c == '\t') {
            counts[2]++;
        } else if (!am_row_is_blank(c)) {
            content = true;
        }
    }
    return false;
}

static am_status detect_delimiter(csv_source *s, am_error *err)
{
    static const char candidates[3] = {',', ';', '\t'};
    size_t counts[3];
    size_t best = 0, i;
    am_status rc;

    for (;;) {
        s->row_start = s->fstart = s->fend = s->pos;
        if (count_delimiters(s->buf + s->pos, s->end - s->pos, counts) || s->eof) {
            break;
        }
        if (s->row_start == 0 && s->end == CSV_BUF_MAX) {
            break; /* an endless header line: next_row will say so */
        }
        rc = refill(s, err);
        if (rc) {
            return rc;
        }
    }
    for (i = 1; i < 3; i++) {
        if (counts[i] > counts[best]) {
            best = i;
        }
    }
    s->delim = candidates[best];
    return AM_OK;
}

/* Does header field (p, len), maybe with "" escapes, name `want`? Both trimmed, ASCII nocase. */
static bool header_matches(const char *p, size_t len, bool escaped, const char *want)
{
    size_t wlen = strlen(want);
    size_t i = 0, j = 0;

    am_row_trim(&p, &len);
    am_row_trim(&want, &wlen);
    while (i < len && j < wlen) {
        if (ascii_lower((unsigned char)p[i]) != ascii_lower((unsigned char)want[j])) {
            return false;
        }
        i += (escaped && p[i] == '"') ? 2 : 1;
        j++;
    }
    return i >= len && j == wlen;
}

static am_status read_header(csv_source *s, am_error *err)
{
    char limit[LIMIT_TEXT_LEN];
    bool got = false;
    size_t i, k;
    am_status rc;

    while (s->end < 3 && !s->eof) {
        rc = refill(s, err);
        if (rc) {
            return rc;
        }
    }
    if (s->end >= 3 && memcmp(s->buf, "\xEF\xBB\xBF", 3) == 0) {
        s->pos = 3;
    }
    if (!s->delim) {
        rc = detect_delimiter(s, err);
        if (rc) {
            return rc;
        }
    }
    rc = next_row(s, &got, err);
    if (rc) {
        return rc;
    }
    if (!got) {
        return am_error_set(err, AM_EINPUT,
                            "%s: empty file; expected a header row with columns " REQUIRED_LIST,
                            s->path);
    }
    if (s->row_error == ROW_TOO_LONG) {
        limit_text(limit, CSV_ROW_MAX);
        return am_error_set(err, AM_EINPUT,
                            "%s:%" PRIu64 ": header row longer than the %s limit; is this a "
                            "CSV file?",
                            s->path, s->row_line, limit);
    }
    if (s->row_error == ROW_AFTER_QUOTE) {
        return am_error_set(err, AM_EINPUT,
                            "%s:%" PRIu64 ": header field %zu: text after the closing quote; "
                            "quote the whole name and double the quotes inside it",
                            s->path, s->row_line, s->error_field + 1);
    }
    if (s->nfields > CSV_COLUMNS_MAX) {
        return am_error_set(err, AM_EINPUT,
                            "%s:%" PRIu64 ": header has %zu columns, more than %d; is the "
                            "delimiter right?",
                            s->path, s->row_line, s->nfields, CSV_COLUMNS_MAX);
    }
    s->header_fields = s->nfields;
    for (k = 0; k < AM_COL_COUNT; k++) {
        s->column_at[k] = SIZE_MAX;
    }
    for (i = 0; i < s->nfields; i++) {
        const csv_span *sp = &s->spans[i];
        const char *p = s->buf + s->row_start + sp->off;

        for (k = 0; k < AM_COL_COUNT; k++) {
            if (!header_matches(p, sp->len, sp->flags & F_ESCAPED, s->header_name[k])) {
                continue;
            }
            if (s->column_at[k] != SIZE_MAX) {
                return am_error_set(err, AM_EINPUT,
                                    "%s:%" PRIu64 ": column '%s' appears twice in the header "
                                    "(fields %zu and %zu); rename one or map another with "
                                    "\"columns\"",
                                    s->path, s->row_line, s->header_name[k], s->column_at[k] + 1,
                                    i + 1);
            }
            s->column_at[k] = i;
        }
    }
    for (k = 0; k < AM_COL_REQUIRED; k++) {
        if (s->column_at[k] != SIZE_MAX) {
            continue;
        }
        if (s->header_name[k] == am_row_column_names[k]) {
            return am_error_set(err, AM_EINPUT,
                                "%s:%" PRIu64 ": missing column '%s'; add it or map it with "
                                "\"columns\"",
                                s->path, s->row_line, am_row_column_names[k]);
        }
        return am_error_set(err, AM_EINPUT,
                            "%s:%" PRIu64 ": missing column '%s' (mapped to '%s' in "
                            "\"columns\"); add it or fix the mapping",
                            s->path, s->row_line, s->header_name[k], am_row_column_names[k]);
    }
    return AM_OK;
}

/* ---- records ---------------------------------------------------------------- */

/* A copy of a quoted cell in the arena with each "" made one quote; *len is updated. */
static const char *unescape_value(am_arena *arena, const char *v, size_t *len)
{
    char *copy = am_arena_strndup(arena, v, *len);
    size_t i, j;

    if (!copy) {
        return NULL;
    }
    for (i = 0, j = 0; i < *len; i++, j++) {
        copy[j] = copy[i];
        if (copy[i] == '"' && i + 1 < *len && copy[i + 1] == '"') {
            i++;
        }
    }
    copy[j] = '\0';
    *len = j;
    return copy;
}

/* Which of our columns the file's field `field` holds; AM_COL_COUNT when none. */
static size_t column_of_field(const csv_source *s, size_t field)
{
    size_t k;

    for (k = 0; k < AM_COL_COUNT; k++) {
        if (s->column_at[k] == field) {
            break;
        }
    }
    return k;
}

/* Our columns' cells in the current row: trimmed, valid UTF-8, "" collapsed. */
typedef struct csv_cells {
    const char *value[AM_COL_COUNT];
    size_t len[AM_COL_COUNT];
    bool in_arena[AM_COL_COUNT]; /* unescaped into the batch arena already */
} csv_cells;

/* Reject a row whose shape is wrong: too long, bad quoting, field count, field size. */
static am_status check_shape(bool *rejected, csv_source *s, am_record_batch *batch, am_error *err)
{
    char limit[LIMIT_TEXT_LEN];
    size_t k;

    *rejected = true;
    if (s->row_error == ROW_TOO_LONG) {
        limit_text(limit, CSV_ROW_MAX);
        return am_row_reject(batch, s->path, s->row_line, err,
                      "row longer than the %s limit; split it or shorten it", limit);
    }
    if (s->row_error == ROW_AFTER_QUOTE) {
        return am_row_reject(batch, s->path, s->row_line, err,
                      "field %zu: text after the closing quote; quote the whole field and "
                      "double the quotes inside it",
                      s->error_field + 1);
    }
    if (s->nfields != s->header_fields) {
        return am_row_reject(batch, s->path, s->row_line, err, "%zu fields, the header has %zu; check quoting",
                      s->nfields, s->header_fields);
    }
    if (s->long_field != SIZE_MAX) {
        limit_text(limit, CSV_FIELD_MAX);
        k = column_of_field(s, s->long_field);
        if (k < AM_COL_COUNT) {
            return am_row_reject(batch, s->path, s->row_line, err,
                          "column '%s': value longer than the %s limit; shorten it",
                          am_row_column_names[k], limit);
        }
        return am_row_reject(batch, s->path, s->row_line, err,
                      "field %zu: value longer than the %s limit; shorten it", s->long_field + 1,
                      limit);
    }
    *rejected = false;
    return AM_OK;
}

/*
 * Our columns' cells of a well-shaped row, or a reject naming the column
 * whose bytes are not UTF-8. Columns the file lacks are "".
 */
static am_status read_cells(csv_cells *cells, bool *rejected, csv_source *s, am_record_batch *batch,
                            am_error *err)
{
    size_t k, at, bad_at;

    *rejected = false;
    for (k = 0; k < AM_COL_COUNT; k++) {
        const char *v = "";
        size_t n = 0;

        cells->in_arena[k] = false;
        at = s->column_at[k];
        if (at != SIZE_MAX) {
            v = s->buf + s->row_start + s->spans[at].off;
            n = s->spans[at].len;
            am_row_trim(&v, &n);
        }
        bad_at = am_row_utf8_bad_offset(v, n);
        if (bad_at < n) {
            *rejected = true;
            if (v[bad_at] == '\0') {
                return am_row_reject(batch, s->path, s->row_line, err,
                              "column '%s': contains a NUL byte; remove it", am_row_column_names[k]);
            }
            return am_row_reject(batch, s->path, s->row_line, err,
                          "column '%s': invalid UTF-8 (byte 0x%02X at offset %zu); save the "
                          "file as UTF-8",
                          am_row_column_names[k], (unsigned char)v[bad_at], bad_at);
        }
        if (at != SIZE_MAX && (s->spans[at].flags & F_ESCAPED)) {
            /* Checks must see the value, not its CSV spelling. */
            v = unescape_value(&batch->arena, v, &n);
            if (!v) {
                return am_error_set(err, AM_ENOMEM, "%s: out of memory reading line %" PRIu64,
                                    s->path, s->row_line);
            }
            cells->in_arena[k] = true;
        }
        cells->value[k] = v;
        cells->len[k] = n;
    }
    return AM_OK;
}

/* Turn the scanned row into a record, or a reject saying why not. */
static am_status emit_row(csv_source *s, am_record_batch *batch, am_error *err)
{
    char why[400];
    csv_cells c;
    uint64_t line = s->row_line;
    uint32_t mask = 0;
    int64_t cents = 0;
    bool rejected = false;
    am_status rc;

    rc = check_shape(&rejected, s, batch, err);
    if (rc || rejected) {
        return rc;
    }
    rc = read_cells(&c, &rejected, s, batch, err);
    if (rc || rejected) {
        return rc;
    }
    am_row_check(&mask, &cents, why, sizeof(why), s->base.cfg, c.value, c.len);
    if (why[0]) {
        return am_row_reject(batch, s->path, line, err, "%s", why);
    }
    return am_row_record(batch, c.value, c.len, c.in_arena, s->path, "line", line, mask, cents,
                         err);
}

/* ---- the connector ---------------------------------------------------------- */

static void csv_close(am_source *src)
{
    csv_source *s = (csv_source *)src;

    if (!s) {
        return;
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    free(s->open_path);
    free(s->buf);
    free(s->spans);
    free(s);
}

static am_status csv_open(am_source **out, const am_source_config *cfg,
                          const am_source_env *env, am_error *err)
{
    csv_source *s = NULL;
    am_status rc = AM_OK;

    (void)env; /* a file keeps no secrets and reads too fast for progress */
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory opening a CSV source", cfg->where);
    }
    s->fd = -1;
    s->base.ops = &am_connector_csv;
    s->base.cfg = cfg;
    s->line = 1;
    rc = read_config(s, cfg, err);
    if (rc) {
        goto cleanup;
    }
    s->cap = CSV_CHUNK < CSV_BUF_MAX ? CSV_CHUNK : CSV_BUF_MAX;
    s->buf = malloc(s->cap);
    s->spans = malloc(CSV_COLUMNS_MAX * sizeof(*s->spans));
    if (!s->buf || !s->spans) {
        rc = am_error_set(err, AM_ENOMEM, "%s: out of memory for the read buffer", s->path);
        goto cleanup;
    }
    s->fd = open(s->open_path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        if (strcmp(s->open_path, s->path) != 0) {
            rc = am_error_set(err, AM_EIO,
                              "%s: cannot open %s: %s; check \"path\" in the source's config",
                              s->path, s->open_path, strerror(errno));
        } else {
            rc = am_error_set(err, AM_EIO,
                              "%s: cannot open: %s; check \"path\" in the source's "
                              "config",
                              s->path, strerror(errno));
        }
        goto cleanup;
    }
    rc = read_header(s, err);
    if (rc) {
        goto cleanup;
    }
    *out = &s->base;
    s = NULL;
cleanup:
    csv_close(s ? &s->base : NULL);
    return rc;
}

static am_status csv_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    csv_source *s = (csv_source *)src;
    am_error row_err;
    bool got = false;
    am_status rc = AM_OK;

    am_record_batch_reset(batch);
    if (s->failed) {
        return am_error_set(err, s->base.last.status, "%s", s->base.last.msg);
    }
    am_error_clear(&row_err);
    while (!s->done && batch->count + batch->reject_count < CSV_BATCH_ROWS) {
        rc = next_row(s, &got, &row_err);
        if (rc) {
            break;
        }
        if (!got) {
            s->done = true;
            break;
        }
        rc = emit_row(s, batch, &row_err);
        if (rc) {
            break;
        }
    }
    if (!rc) {
        return AM_OK;
    }
    /*
     * The rest of the file is unreadable. Hand over the rows of this batch
     * first; the next call reports the failure.
     */
    s->failed = true;
    s->base.last = row_err;
    if (batch->count || batch->reject_count) {
        return AM_OK;
    }
    return am_error_set(err, row_err.status, "%s", row_err.msg);
}

static const am_error *csv_last_error(const am_source *src)
{
    return &src->last;
}

static const char *const csv_fields[] = {"path", "delimiter", "columns", NULL};

const am_connector_ops am_connector_csv = {
    .type = "csv",
    .fields = csv_fields,
    .open = csv_open,
    .next_batch = csv_next_batch,
    .close = csv_close,
    .last_error = csv_last_error,
};
