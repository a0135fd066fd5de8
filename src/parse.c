/*
 * Number parsing for untrusted text (CSV cells, stored files, CRM answers):
 * the whole input must be the number, and overflow is an error.
 */
#include "acctmap/parse.h"

#include <stdbool.h>
#include <stdint.h>

static am_status bad_number(am_error *err, const char *s, size_t len, const char *what)
{
    return am_error_set(err, AM_EINPUT, "\"%.*s\" is not %s", (int)(len > 40 ? 40 : len), s,
                        what);
}

am_status am_parse_u64(uint64_t *out, const char *s, size_t len, am_error *err)
{
    uint64_t v = 0;
    size_t i;

    *out = 0;
    if (len == 0) {
        return bad_number(err, s, len, "a number");
    }
    for (i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) {
            return bad_number(err, s, len, "a whole number");
        }
        if (v > (UINT64_MAX - d) / 10) {
            return bad_number(err, s, len, "a number in range");
        }
        v = v * 10 + d;
    }
    *out = v;
    return AM_OK;
}

am_status am_parse_i64(int64_t *out, const char *s, size_t len, am_error *err)
{
    bool neg = len > 0 && s[0] == '-';
    uint64_t v;
    am_status rc;

    *out = 0;
    rc = am_parse_u64(&v, s + neg, len - neg, err);
    if (rc) {
        return rc;
    }
    if (v > (uint64_t)INT64_MAX + neg) {
        return bad_number(err, s, len, "a number in range");
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return AM_OK;
}

am_status am_parse_amount(int64_t *cents_out, const char *s, size_t len, am_error *err)
{
    size_t dot = len;
    size_t i;
    bool neg = len > 0 && s[0] == '-';
    uint64_t whole = 0, frac = 0;
    size_t frac_len;
    am_status rc;

    *cents_out = 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            dot = i;
            break;
        }
    }
    frac_len = dot < len ? len - dot - 1 : 0;
    if (dot == (size_t)neg || frac_len > 2 || (dot < len && frac_len == 0)) {
        return bad_number(err, s, len, "an amount (digits, at most two decimals after '.')");
    }
    rc = am_parse_u64(&whole, s + neg, dot - neg, err);
    if (rc) {
        return bad_number(err, s, len, "an amount (digits, at most two decimals after '.')");
    }
    if (frac_len) {
        rc = am_parse_u64(&frac, s + dot + 1, frac_len, err);
        if (rc) {
            return bad_number(err, s, len, "an amount (digits, at most two decimals after '.')");
        }
        if (frac_len == 1) {
            frac *= 10;
        }
    }
    if (whole > ((uint64_t)INT64_MAX - frac) / 100) {
        return bad_number(err, s, len, "an amount in range");
    }
    *cents_out = (int64_t)(whole * 100 + frac) * (neg ? -1 : 1);
    return AM_OK;
}
