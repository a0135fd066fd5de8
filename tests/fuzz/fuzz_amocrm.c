/*
 * libFuzzer target: any bytes as an amoCRM v4 page, read as a companies page
 * and as a leads page. The page either maps or says why in one line. The
 * connector's file is included to reach its static page readers.
 */
#include "connectors/amocrm.c"

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
        "{\"id\":\"b\",\"sources\":[{\"type\":\"amocrm\",\"token_env\":\"T\","
        "\"populations\":{\"won\":\"partners\"}}]}]}";
    amo_source s;
    am_record_batch batch;
    am_error err = {AM_OK, ""};
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, 0, &jerr);
    json_t *list = NULL;
    const char *next = NULL;
    am_status rc;

    if (!cfg && am_config_parse(&cfg, config, sizeof(config) - 1, "fuzz.json", ".", &err)) {
        abort();
    }
    if (!root) {
        return 0;
    }
    memset(&s, 0, sizeof(s));
    s.base.cfg = &am_config_org_at(cfg, 1)->sources[0];
    snprintf(s.base.label, sizeof(s.base.label), "amocrm https://fuzz.amocrm.ru");
    s.inn_field = size % 2 ? "ИНН" : NULL;
    s.inn_field_id = size % 2 ? 0 : 1052301;
    am_record_batch_init(&batch);
    rc = parse_page(&list, &next, &s, "companies", 1, root, &err);
    check_message(rc, &err);
    if (!rc) {
        check_message(take_companies(&s, list, &err), &err);
    }
    rc = index_companies(&s, &err);
    check_message(rc, &err);
    if (!rc) {
        rc = parse_page(&list, &next, &s, "leads", 1, root, &err);
        check_message(rc, &err);
        if (!rc) {
            check_message(take_leads(&s, list, &err), &err);
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
