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

/* Power of ten, or 0 when it does not fit in 63 bits. */
static int64_t pow10_i64(unsigned n)
{
    int64_t p = 1;

    while (n--) {
        if (p > INT64_MAX / 10) {
            return 0;
        }
        p *= 10;
    }
    return p;
}

am_status am_parse_decimal_cents(int64_t *cents_out, const char *s, size_t len, am_error *err)
{
    size_t i = 0;
    bool neg = false, digits = false;
    int64_t mant = 0;
    long scale = 2; /* cents = mant * 10^scale */
    long exp = 0;
    unsigned dropped = 0; /* significant digits that did not fit: only zeros are fine */

    *cents_out = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        digits = true;
        if (mant > (INT64_MAX - 9) / 10) {
            if (s[i] != '0') {
                return bad_number(err, s, len, "an amount in range");
            }
            scale++; /* trailing zeros of a large whole number */
            continue;
        }
        mant = mant * 10 + (s[i] - '0');
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            digits = true;
            if (mant > (INT64_MAX - 9) / 10) {
                dropped += s[i] != '0';
                continue;
            }
            mant = mant * 10 + (s[i] - '0');
            scale--;
        }
    }
    if (!digits) {
        return bad_number(err, s, len, "a decimal number");
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = false, edigits = false;
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+')) {
            eneg = s[i] == '-';
            i++;
        }
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            edigits = true;
            if (exp < 100000) {
                exp = exp * 10 + (s[i] - '0');
            }
        }
        if (!edigits) {
            return bad_number(err, s, len, "a decimal number");
        }
        exp = eneg ? -exp : exp;
    }
    if (i != len) {
        return bad_number(err, s, len, "a decimal number");
    }
    if (dropped) {
        return bad_number(err, s, len, "an amount in range");
    }
    scale += exp;
    if (mant == 0) {
        return AM_OK;
    }
    if (scale >= 0) {
        int64_t p = pow10_i64((unsigned)(scale > 19 ? 19 : scale));
        if (p == 0 || mant > INT64_MAX / p) {
            return bad_number(err, s, len, "an amount in range");
        }
        mant *= p;
    } else if (scale < -18) {
        mant = 0; /* far below a cent */
    } else {
        int64_t p = pow10_i64((unsigned)-scale);
        int64_t q = mant / p, r = mant % p;
        mant = q + (r * 2 >= p);
    }
    *cents_out = neg ? -mant : mant;
    return AM_OK;
}
