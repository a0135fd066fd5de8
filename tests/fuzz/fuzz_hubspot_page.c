/*
 * libFuzzer target for the HubSpot connector's page parser: any bytes as
 * a list or search answer, read first as a company page, then as a deal
 * page against the companies it gave, then emitted as a run reads them. The
 * connector is compiled into this file so that its static parser is
 * reachable (its am_connector_hubspot is the one linked).
 */
#include "connectors/hubspot.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static am_config *config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char text[] =
        "{\"self\":\"acme\",\"orgs\":[{\"id\":\"acme\",\"sources\":[{\"type\":\"hubspot\","
        "\"populations\":{\"lead\":\"prospects\",\"lost\":\"churned\"}}]},"
        "{\"id\":\"globex\",\"sources\":[{\"type\":\"csv\",\"path\":\"x.csv\"}]}]}";
    am_error err;

    (void)argc;
    (void)argv;
    if (am_config_parse(&config, text, sizeof(text) - 1, "fuzz.json", ".", &err)) {
        abort();
    }
    return 0;
}

/* A message is one line. */
static void check_line(const char *msg)
{
    if (!msg[0] || strchr(msg, '\n')) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hs_source *s = calloc(1, sizeof(*s));
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    am_record_batch batch;
    am_error err;
    uint32_t rows = 0;
    char *next = NULL;
    size_t i;

    if (!s) {
        abort();
    }
    s->base.ops = &am_connector_hubspot;
    s->base.cfg = &am_config_org_at(config, 0)->sources[0];
    am_arena_init(&s->arena);
    s->amount_from = (enum am_crm_amount)(size % 3); /* every way of summing amounts */
    snprintf(s->where, sizeof(s->where), "hubspot https://api.hubapi.com");
    am_record_batch_init(&batch);
    if (!root) {
        goto cleanup;
    }
    if (parse_page(s, root, true, &rows, &next, "fuzz", &err)) {
        check_line(err.msg);
        goto cleanup;
    }
    free(next);
    next = NULL;
    if (index_companies(s, &err)) {
        abort();
    }
    rows = 0;
    if (parse_page(s, root, false, &rows, &next, "fuzz", &err)) {
        check_line(err.msg);
    }
    s->pulled = true;
    for (;;) {
        if (hs_next_batch(&s->base, &batch, &err)) {
            abort(); /* emitting what was read cannot fail */
        }
        if (batch.count == 0 && batch.reject_count == 0) {
            break;
        }
        for (i = 0; i < batch.count; i++) {
            const am_record *r = &batch.records[i];
            if (!r->id[0] || !r->name || !r->domain || !r->country || !r->city || !r->owner ||
                r->populations == 0 || (!r->name[0] && !r->domain[0])) {
                abort();
            }
        }
        for (i = 0; i < batch.reject_count; i++) {
            check_line(batch.rejects[i].msg);
        }
    }
cleanup:
    free(next);
    json_decref(root);
    am_record_batch_dispose(&batch);
    hs_close(&s->base);
    return 0;
}
