/*
 * Number parsing for untrusted text: whole input consumed, range checked.
 * Use these instead of atoi/strtol at every call site.
 */
#ifndef AM_PARSE_H
#define AM_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"

/* Parse all `len` bytes of `s` as a decimal integer. AM_EINPUT when not one or out of range. */
am_status am_parse_i64(int64_t *out, const char *s, size_t len, am_error *err);
am_status am_parse_u64(uint64_t *out, const char *s, size_t len, am_error *err);

/*
 * Parse a money amount ("1500", "1500.5", "-20.00", "1 500,75" is refused) into
 * hundredths. At most two decimals. AM_EINPUT otherwise.
 */
am_status am_parse_amount(int64_t *cents_out, const char *s, size_t len, am_error *err);

/*
 * Parse a decimal number as CRMs write it ("48000000", "1850000.00", "4.8E7",
 * "-3.2e+06": sign, digits, '.', exponent) into hundredths, exactly; digits
 * past the cent are rounded half away from zero. AM_EINPUT when it is not
 * such a number or does not fit in 63 bits.
 */
am_status am_parse_decimal_cents(int64_t *cents_out, const char *s, size_t len, am_error *err);

#endif
