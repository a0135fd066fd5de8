/*
 * libFuzzer target: any bytes as a Bitrix24 list page, read as each of the
 * three list methods. The page either maps or says why in one line. The
 * connector's file is included to reach its static page readers.
 */
#include "connectors/bitrix24.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(am_status rc, const am_error *err)
{
    if (rc && (!err->msg[0] || strchr(err->msg, '\n'))) {
        abort(); /* every failure has a one-line message */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static am_config *cfg;
    static const char config[] =
        "{\"self\":\"a\",\"orgs\":[{\"id\":\"a\",\"sources\":[{\"type\":\"csv\",\"path\":\"x\"}]},"
        "{\"id\":\"b\",\"sources\":[{\"type\":\"bitrix24\",\"webhook_env\":\"W\","
        "\"populations\":{\"PARTNER\":\"partners\",\"lost\":\"churned\"}}]}]}";
    static const char *const methods[] = {"crm.company.list", "crm.requisite.list",
                                          "crm.deal.list"};
    static const page_fn takes[] = {take_companies, take_requisites, take_deals};
    b24_source s;
    am_record_batch batch;
    am_error err = {AM_OK, ""};
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, 0, &jerr);
    size_t m;

    if (!cfg && am_config_parse(&cfg, config, sizeof(config) - 1, "fuzz.json", ".", &err)) {
        abort();
    }
    if (!root) {
        return 0;
    }
    memset(&s, 0, sizeof(s));
    s.base.cfg = &am_config_org_at(cfg, 1)->sources[0];
    snprintf(s.base.label, sizeof(s.base.label), "bitrix24 https://fuzz.bitrix24.ru");
    am_record_batch_init(&batch);
    for (m = 0; m < 3; m++) {
        json_t *result = NULL;
        long next = 0;
        am_status rc = read_page(&result, &next, &s, methods[m], 0, root, &err);

        check_message(rc, &err);
        if (!rc) {
            rc = takes[m](&s, result, &err);
            check_message(rc, &err);
        }
        if (m == 0) {
            rc = index_companies(&s, &err);
            check_message(rc, &err);
            if (rc) {
                break;
            }
        }
    }
    while (emit_companies(&s, &batch, &err) == AM_OK && (batch.count || batch.reject_count)) {
        am_record_batch_reset(&batch);
    }
    am_record_batch_dispose(&batch);
    json_decref(root);
    am_crm_list_dispose(&s.list);
    am_arena_dispose(&s.arena);
    return 0;
}
