/*
 * What the CSV and PostgreSQL connectors share (see rows.h): columns, cell
 * checks with their reject wording, and the record of a row.
 */
#include "connectors/rows.h"
#include "acctmap/parse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <utf8proc.h>

const char *const am_row_column_names[AM_COL_COUNT] = {
    "id", "name", "domain", "tax_id", "country", "status", "city", "owner", "amount",
};

bool am_row_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

void am_row_trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;

    while (n && am_row_is_blank(p[0])) {
        p++;
        n--;
    }
    while (n && am_row_is_blank(p[n - 1])) {
        n--;
    }
    *s = p;
    *len = n;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool am_row_equals_nocase(const char *s, size_t len, const char *lit)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!lit[i] || ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)lit[i])) {
            return false;
        }
    }
    return lit[len] == '\0';
}

void am_row_excerpt(char out[AM_ROW_EXCERPT_MAX + 4], const char *s, size_t len)
{
    size_t n = len, i;

    if (n > AM_ROW_EXCERPT_MAX) {
        n = AM_ROW_EXCERPT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--; /* do not cut a character in two */
        }
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7F) ? ' ' : (c == '"' ? '\'' : (char)c);
    }
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* ASCII goes through a plain loop; utf8proc only sees the rest. */
size_t am_row_utf8_bad_offset(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        utf8proc_int32_t cp;
        utf8proc_ssize_t n;

        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        if (c == 0) {
            return i;
        }
        n = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) {
            return i;
        }
        i += (size_t)n;
    }
    return len;
}

am_status am_row_column_of(size_t *k_out, const char *key, const char *where, am_error *err)
{
    size_t k;

    for (k = 0; k < AM_COL_COUNT; k++) {
        if (strcmp(key, am_row_column_names[k]) == 0) {
            *k_out = k;
            return AM_OK;
        }
    }
    *k_out = AM_COL_COUNT;
    return am_error_set(err, AM_ECONFIG,
                        "%s.columns.%s: unknown column; use one of id,name,domain,tax_id,"
                        "country,status,city,owner,amount",
                        where, key);
}

am_status am_row_reject(am_record_batch *batch, const char *where, uint64_t line, am_error *err,
                        const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return am_record_batch_reject(batch, line > UINT32_MAX ? UINT32_MAX : (uint32_t)line, err,
                                  "%s:%" PRIu64 ": %s", where, line, what);
}

/* Bits of a standard status value, singular or plural; 0 for anything else. */
static uint32_t standard_status(const char *v, size_t len)
{
    if (am_row_equals_nocase(v, len, "customer") || am_row_equals_nocase(v, len, "customers")) {
        return 1u << AM_POP_CUSTOMERS;
    }
    if (am_row_equals_nocase(v, len, "prospect") || am_row_equals_nocase(v, len, "prospects")) {
        return 1u << AM_POP_PROSPECTS;
    }
    if (am_row_equals_nocase(v, len, "opportunity") ||
        am_row_equals_nocase(v, len, "opportunities")) {
        return 1u << AM_POP_OPPORTUNITIES;
    }
    return 0;
}

/*
 * The populations of a status cell, values joined with ';'. The source's
 * `populations` rules come first so that they can redefine a standard value.
 * Returns false with the unknown value in (*bad, *bad_len).
 */
static bool status_populations(uint32_t *mask_out, const am_source_config *cfg, const char *v,
                               size_t len, const char **bad, size_t *bad_len)
{
    const char *end = v + len;
    uint32_t mask = 0;

    while (v < end) {
        const char *semi = memchr(v, ';', (size_t)(end - v));
        const char *piece = v;
        size_t n = (size_t)((semi ? semi : end) - v);
        uint32_t bits;

        am_row_trim(&piece, &n);
        if (n) {
            bits = am_source_config_rule_match(cfg, piece, n);
            if (!bits) {
                bits = standard_status(piece, n);
            }
            if (!bits) {
                *bad = piece;
                *bad_len = n;
                return false;
            }
            mask |= bits;
        }
        v = semi ? semi + 1 : end;
    }
    *mask_out = mask;
    return true;
}

void am_row_check(uint32_t *mask_out, int64_t *cents_out, char *why, size_t why_cap,
                  const am_source_config *cfg, const char *const value[AM_COL_COUNT],
                  const size_t len[AM_COL_COUNT])
{
    char shown[AM_ROW_EXCERPT_MAX + 4];
    const char *bad = NULL;
    size_t bad_len = 0;

    *mask_out = 0;
    *cents_out = 0;
    why[0] = '\0';
    if (len[AM_COL_ID] == 0) {
        snprintf(why, why_cap, "column 'id': empty; give every row an id");
    } else if (len[AM_COL_NAME] == 0 && len[AM_COL_DOMAIN] == 0 && len[AM_COL_TAX_ID] == 0) {
        snprintf(why, why_cap, "no name, domain or tax_id; fill at least one of them");
    } else if (!status_populations(mask_out, cfg, value[AM_COL_STATUS], len[AM_COL_STATUS], &bad,
                                   &bad_len)) {
        am_row_excerpt(shown, bad, bad_len);
        snprintf(why, why_cap,
                 "column 'status': unknown value \"%s\"; map it under \"populations\" in the "
                 "source's config",
                 shown);
    } else if (*mask_out == 0) {
        snprintf(why, why_cap,
                 "column 'status': empty; use customer, prospect or opportunity, or map other "
                 "values under \"populations\"");
    } else if (len[AM_COL_AMOUNT] > 0 && am_parse_amount(cents_out, value[AM_COL_AMOUNT],
                                                         len[AM_COL_AMOUNT], NULL) != AM_OK) {
        am_row_excerpt(shown, value[AM_COL_AMOUNT], len[AM_COL_AMOUNT]);
        snprintf(why, why_cap,
                 "column 'amount': \"%s\" is not an amount; write digits with at most two "
                 "decimals after '.', or empty the cell",
                 shown);
    }
}

am_status am_row_record(am_record_batch *batch, const char *const value[AM_COL_COUNT],
                        const size_t len[AM_COL_COUNT], const bool *in_arena, const char *where,
                        const char *unit, uint64_t line, uint32_t mask, int64_t cents,
                        am_error *err)
{
    static const enum am_row_column cols[] = {AM_COL_ID,     AM_COL_NAME,    AM_COL_DOMAIN,
                                              AM_COL_TAX_ID, AM_COL_COUNTRY, AM_COL_CITY,
                                              AM_COL_OWNER};
    am_record *rec = NULL;
    const char **to[sizeof(cols) / sizeof(cols[0])];
    am_status rc;
    size_t i;

    rc = am_record_batch_push(&rec, batch, err);
    if (rc) {
        return rc;
    }
    to[0] = &rec->id;
    to[1] = &rec->name;
    to[2] = &rec->domain;
    to[3] = &rec->tax_id;
    to[4] = &rec->country;
    to[5] = &rec->city;
    to[6] = &rec->owner;
    rec->line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
    rec->populations = mask;
    rec->has_amount = len[AM_COL_AMOUNT] > 0;
    rec->amount_cents = cents;
    for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        enum am_row_column k = cols[i];
        if (len[k] == 0) {
            *to[i] = "";
        } else if (in_arena && in_arena[k]) {
            *to[i] = value[k];
        } else {
            *to[i] = am_arena_strndup(&batch->arena, value[k], len[k]);
        }
        if (!*to[i]) {
            return am_error_set(err, AM_ENOMEM, "%s: out of memory copying %s %" PRIu64, where,
                                unit, line);
        }
    }
    return AM_OK;
}
