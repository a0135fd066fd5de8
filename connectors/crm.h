/*
 * What the four CRM connectors (salesforce.c, hubspot.c, bitrix24.c,
 * amocrm.c) share, internal to connectors/: the population rule every CRM
 * section of the README describes (the CRM's status value and the states of
 * a company's deals, the source's `populations` map first), next_batch (pull
 * once, then batches), the copy of a record into a batch, text from a server
 * made fit for a message, the company table of the connectors that hold
 * am_records while they read deals (Salesforce, HubSpot: push, index by id,
 * find, rejects, amounts, emit) and the company list of Bitrix24 and amoCRM.
 */
#ifndef AM_CONNECTORS_CRM_H
#define AM_CONNECTORS_CRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acctmap/arena.h"
#include "acctmap/config.h"
#include "acctmap/connector.h"
#include "acctmap/error.h"
#include "acctmap/record.h"

struct am_http;

/* Deal states present among a company's deals (bits of `deals`). */
#define AM_CRM_DEAL_WON 1u
#define AM_CRM_DEAL_OPEN 2u
#define AM_CRM_DEAL_LOST 4u

/* What a record's amount is ("amount" in a CRM source's config). */
enum am_crm_amount {
    AM_CRM_AMOUNT_REVENUE,  /* the company's annual revenue (default) */
    AM_CRM_AMOUNT_PIPELINE, /* the sum of its open deals' amounts */
    AM_CRM_AMOUNT_WON       /* the sum of its won deals' amounts */
};

/*
 * The populations of a company (CRM-COMMON rule). Each of its status value
 * (when not NULL or "") and "won", "open", "lost" (for the deal states in
 * `deals`) goes through the source's `populations` map first; unmapped, the
 * status gives `status_default` (the connector knows which values mean a
 * customer), "won" customers, "open" opportunities, "lost" nothing. No
 * population at all: prospects.
 */
uint32_t am_crm_populations(const am_source_config *cfg, const char *status,
                            uint32_t status_default, unsigned deals);

/*
 * A short printable excerpt of text that came from a server, for messages:
 * at most cap - 1 bytes, not cutting a UTF-8 character, control bytes and '"'
 * as spaces. NULL gives "".
 */
void am_crm_excerpt(char *out, size_t cap, const char *s);

/* Control bytes of text a server sent become spaces: the text fits a one-line message. */
void am_crm_one_line(char *text);

/*
 * Set `err` to a formatted one-line message with every secret `http` knows
 * replaced by "***" (am_http_scrub). Returns `status`.
 */
am_status am_crm_fail_scrubbed(const struct am_http *http, am_error *err, am_status status,
                               const char *fmt, ...) AM_PRINTF(4, 5);

/*
 * "https://acme.amocrm.ru" of a URL: scheme and authority without any
 * user:password, for a source's label; "(not a URL)" without "://".
 */
void am_crm_url_origin(char *out, size_t cap, const char *url);

/*
 * `*in` into `*out` with its strings copied into `arena` (a batch's: the run
 * may read a batch's records after the source is closed). False when out of
 * memory; the caller says so in its own words.
 */
bool am_crm_record_copy(am_record *out, const am_record *in, am_arena *arena);

/*
 * Push a copy of `*in` (am_crm_record_copy) into `batch`. `label` starts the
 * out-of-memory message.
 */
am_status am_crm_batch_add(am_record_batch *batch, const am_record *in, const char *label,
                           am_error *err);

/* The two stages of a CRM source: the whole pull, then the records batch by batch. */
typedef am_status (*am_crm_pull_fn)(am_source *src, am_error *err);
typedef am_status (*am_crm_emit_fn)(am_source *src, am_record_batch *batch, am_error *err);

/*
 * A CRM connector's next_batch: `pull` on the first call (CRMs are read whole
 * before any record is known), then `emit` into the reset batch. A failure
 * sets *failed and src->last, and every later call fails the same way.
 */
am_status am_crm_next_batch(am_source *src, bool *pulled, bool *failed, am_crm_pull_fn pull,
                            am_crm_emit_fn emit, am_record_batch *batch, am_error *err);

/* ---- the company table of Salesforce and HubSpot --------------------------- */

typedef struct am_crm_company {
    am_record rec;        /* strings in the source's arena; populations set when emitted */
    const char *status;   /* the status value (Type, lifecyclestage), "" when null */
    uint32_t status_pops; /* what the status means when the `populations` map has no rule */
    unsigned deals;       /* AM_CRM_DEAL_* */
    /* Sums of the amounts of its open and of its won deals, when any had one. */
    int64_t open_cents, won_cents;
    bool has_open, has_won;
    size_t last_deal; /* serial of the last deal that marked it: a deal counts once */
} am_crm_company;

typedef struct am_crm_reject {
    uint32_t line;
    const char *msg; /* in the source's arena */
} am_crm_reject;

/* Zeroed is empty; am_crm_table_dispose frees it. */
typedef struct am_crm_table {
    am_crm_company *companies;
    size_t count, cap;
    size_t *by_id; /* indexes of companies sorted by id, built before the deals */
    am_crm_reject *rejects;
    size_t reject_count, reject_cap;
    size_t next_reject, next_company; /* what am_crm_table_emit has handed out */
} am_crm_table;

void am_crm_table_dispose(am_crm_table *t);

/* A new zeroed company at the end of the table. `where` starts the out-of-memory message. */
am_status am_crm_table_push(am_crm_company **out, am_crm_table *t, const char *where,
                            am_error *err);

/* A reject for the record of `line`, its message kept in `arena`. */
am_status am_crm_table_reject(am_crm_table *t, am_arena *arena, uint32_t line, const char *where,
                              am_error *err, const char *fmt, ...) AM_PRINTF(6, 7);

/* Sort the companies by rec.id for am_crm_table_find (after the last company is pushed). */
am_status am_crm_table_index(am_crm_table *t, const char *where, am_error *err);

/* The company of `id`, or NULL. Needs am_crm_table_index. */
am_crm_company *am_crm_table_find(const am_crm_table *t, const char *id);

/*
 * Add a deal's amount to the company's open or won sum (`state` is
 * AM_CRM_DEAL_OPEN or AM_CRM_DEAL_WON). False, and nothing added, when the
 * sum would overflow.
 */
bool am_crm_company_add_amount(am_crm_company *c, unsigned state, int64_t cents);

/*
 * Hand out the rejects not yet handed out, then up to `max` records, each
 * with its populations and, unless `amount` is AM_CRM_AMOUNT_REVENUE, its
 * deals' sum as its amount.
 */
am_status am_crm_table_emit(am_crm_table *t, am_record_batch *batch, const am_source_config *cfg,
                            enum am_crm_amount amount, size_t max, am_error *err);

/* ---- the company list of Bitrix24 and amoCRM ----------------------------- */

/* A company as pulled, before its deals are known; strings in the source's arena. */
typedef struct am_crm_entry {
    const char *id; /* as the CRM wrote it ("4") */
    const char *name;
    const char *site;   /* its web site, "" when none */
    const char *status; /* the status value (Bitrix24's COMPANY_TYPE), "" when none */
    const char *inn;    /* "" until known */
    const char *owner;
    uint32_t status_pops; /* what the status means when the `populations` map has no rule */
    uint32_t row;         /* 1-based position in the pull, for messages */
    unsigned deals;       /* AM_CRM_DEAL_* */
    bool bad;             /* no usable id: handed out as a reject */
    bool repeated;        /* an id seen on an earlier row (the list moved while paging) */
} am_crm_entry;

/* Zeroed is empty; am_crm_list_dispose frees it. */
typedef struct am_crm_list {
    am_crm_entry *entries;
    size_t count, cap;
    am_crm_entry **by_id; /* sorted by id for the joins, repeats dropped */
    size_t unique;        /* entries of by_id */
    size_t emitted;       /* what am_crm_list_emit has handed out */
} am_crm_list;

void am_crm_list_dispose(am_crm_list *l);

/* A new zeroed entry at the end, its row numbered. `label` starts the out-of-memory message. */
am_status am_crm_list_push(am_crm_entry **out, am_crm_list *l, const char *label, am_error *err);

/*
 * Index the entries by id for am_crm_list_find. A repeated id (pages shift
 * when companies are added while paging) is the same company: the first row
 * stays, the others are marked `repeated` and never handed out.
 */
am_status am_crm_list_index(am_crm_list *l, const char *label, am_error *err);

/* The entry of `id`, or NULL. Needs am_crm_list_index. */
am_crm_entry *am_crm_list_find(const am_crm_list *l, const char *id);

/*
 * Hand out the entries from l->emitted on until the batch holds `max` records
 * and rejects: a bad entry as the reject "<label>: company #<row> of <list>
 * has no <id_word>; check the <holder>'s data", the others as records with
 * their populations.
 */
am_status am_crm_list_emit(am_crm_list *l, am_record_batch *batch, const am_source_config *cfg,
                           size_t max, const char *label, const char *list, const char *id_word,
                           const char *holder, am_error *err);

#endif
