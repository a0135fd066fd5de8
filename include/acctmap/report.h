/*
 * Report: what one partner may see of a run, filtered by its sharing policy,
 * and its renderings (JSON, CSV, HTML, XLSX). `run` builds every partner's
 * report and stores its canonical JSON with the run; `acctmap report` loads
 * it and renders it, so an old run renders byte for byte the same.
 */
#ifndef AM_REPORT_H
#define AM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "acctmap/error.h"
#include "acctmap/index.h"
#include "acctmap/policy.h"
#include "acctmap/record.h"
#include "acctmap/store.h"

typedef struct am_report am_report;

typedef enum am_report_format {
    AM_REPORT_JSON = 0,
    AM_REPORT_CSV,
    AM_REPORT_HTML,
    AM_REPORT_XLSX
} am_report_format;

/*
 * Record `record` (store order) of org `org` of the run (0: self), or NULL
 * when the caller does not hold it. The builder asks only for records of the
 * populations am_policy_needs names; NULL for one of them is a caller's bug.
 */
typedef const am_record *(*am_report_record_fn)(void *ctx, size_t org, uint32_t record);

/*
 * Build the report of partner `partner` (index in `run`, > 0) under `policy`:
 * our populations not hidden, the partner's populations, each cell's level
 * and count (counts and accounts only), and for each cell shared as accounts
 * the pairs (their record id, our listed fields). When the run has open
 * pipeline values (`pipeline.cents`), a cell has its value only where every
 * amount it sums is shown to the partner anyway: the cell of our
 * opportunities in that column is shared as accounts listing `amount`, and
 * for any other row the cell itself is too (README, "Sharing policy"). Needs
 * am_index_prepare_lookup on org 0 and `partner`. Free with am_report_free.
 */
am_status am_report_build(am_report **out, const am_run *run, const am_index *ix,
                          size_t partner, const am_policy *policy, am_report_record_fn record,
                          void *ctx, am_error *err);
void am_report_free(am_report *r);

/* The canonical JSON of the report (what the store keeps); malloc'd, NUL-terminated. */
am_status am_report_save(char **json_out, size_t *len_out, const am_report *r, am_error *err);

/*
 * Read a report saved by am_report_save. The bytes are untrusted: anything
 * that is not right is AM_ESTORE naming `where`.
 */
am_status am_report_load(am_report **out, const char *json, size_t len, const char *where,
                         am_error *err);

/*
 * Render the report as `format`, for run `run_id` (shown in the output);
 * malloc'd bytes, the same bytes for the same report. XLSX goes through a
 * temporary file in $TMPDIR (default /tmp), removed before returning.
 */
am_status am_report_render(char **out, size_t *len_out, const am_report *r, const char *run_id,
                           am_report_format format, am_error *err);

/* "json", "csv", "html", "xlsx" -> the format; AM_EUSAGE for anything else. */
am_status am_report_format_parse(am_report_format *out, const char *name, am_error *err);

/* The run part that keeps a partner's report: "report-<partner>.json". */
void am_report_part_name(char *out, size_t cap, const char *partner);

#endif
