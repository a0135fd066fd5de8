/*
 * What the two connectors of rows and columns (csv.c, postgresql.c) share,
 * internal to connectors/: our column names and the "columns" map, the
 * checks of a row's cells (UTF-8, id, name/domain/tax_id, status ->
 * populations, amount) with their reject wording, and the record made of the
 * cells. One place, so that a CSV file and a table read the same way and say
 * the same things.
 */
#ifndef AM_CONNECTORS_ROWS_H
#define AM_CONNECTORS_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/arena.h"
#include "acctmap/config.h"
#include "acctmap/error.h"
#include "acctmap/record.h"

/* Our columns, in the order messages list them. The first AM_COL_REQUIRED are required. */
enum am_row_column {
    AM_COL_ID,
    AM_COL_NAME,
    AM_COL_DOMAIN,
    AM_COL_TAX_ID,
    AM_COL_COUNTRY,
    AM_COL_STATUS,
    AM_COL_CITY,
    AM_COL_OWNER,
    AM_COL_AMOUNT,
    AM_COL_COUNT
};
#define AM_COL_REQUIRED 6

/* "id", "name", ...: the names in the config's "columns" and in messages. */
extern const char *const am_row_column_names[AM_COL_COUNT];

/* Cell excerpts in messages: at most this many bytes, then "...". */
#define AM_ROW_EXCERPT_MAX 60

/* Blank as trimmed around cells: space, \t, \r, \n, \v, \f. */
bool am_row_is_blank(char c);

/* Trim blanks off both ends of (*s, *len). */
void am_row_trim(const char **s, size_t *len);

/* ASCII case-insensitive equality of (s, len) and the C string `lit`. */
bool am_row_equals_nocase(const char *s, size_t len, const char *lit);

/*
 * A short printable copy of a cell for a one-line message: control bytes as
 * spaces, '"' as '\'', cut at a UTF-8 boundary after AM_ROW_EXCERPT_MAX bytes
 * with "..." after. `s` is valid UTF-8.
 */
void am_row_excerpt(char out[AM_ROW_EXCERPT_MAX + 4], const char *s, size_t len);

/*
 * Offset of the first byte of `s` that is not valid UTF-8 or is NUL, or `len`
 * when there is none.
 */
size_t am_row_utf8_bad_offset(const char *s, size_t len);

/*
 * Which of our columns the "columns" key `key` names (*k_out). AM_ECONFIG
 * "<where>.columns.<key>: unknown column; use one of ..." when none.
 */
am_status am_row_column_of(size_t *k_out, const char *key, const char *where, am_error *err);

/*
 * A reject of the row at `line` into `batch`: "<where>:<line>: <what>", the
 * record's line clamped to 2^32-1.
 */
am_status am_row_reject(am_record_batch *batch, const char *where, uint64_t line, am_error *err,
                        const char *fmt, ...) AM_PRINTF(5, 6);

/*
 * The checks of a row's trimmed, valid UTF-8 cells, in order: an id; a name,
 * domain or tax_id; a status whose values (joined with ';') are each mapped
 * under the source's `populations` or a standard one (customer, prospect,
 * opportunity, singular or plural; the map first); an amount when the cell
 * is not empty. On success *mask_out and *cents_out are set and *why is "";
 * else *why is the reject's text (for am_row_reject's "%s").
 */
void am_row_check(uint32_t *mask_out, int64_t *cents_out, char *why, size_t why_cap,
                  const am_source_config *cfg, const char *const value[AM_COL_COUNT],
                  const size_t len[AM_COL_COUNT]);

/*
 * Push the record of a checked row into `batch`: its strings copied into the
 * batch's arena ("" for an empty cell; cells whose in_arena[k] is true are
 * there already; in_arena may be NULL), populations `mask`, the amount when
 * the amount cell is not empty. Out of memory: "<where>: out of memory
 * copying <unit> <line>".
 */
am_status am_row_record(am_record_batch *batch, const char *const value[AM_COL_COUNT],
                        const size_t len[AM_COL_COUNT], const bool *in_arena, const char *where,
                        const char *unit, uint64_t line, uint32_t mask, int64_t cents,
                        am_error *err);

#endif
