/*
 * Registry: the const table of connector types, and the generic source calls
 * that dispatch through a connector's ops.
 */
#include "acctmap/connector.h"

#include <string.h>

extern const am_connector_ops am_connector_csv;
extern const am_connector_ops am_connector_amocrm;
extern const am_connector_ops am_connector_bitrix24;
extern const am_connector_ops am_connector_hubspot;
extern const am_connector_ops am_connector_postgresql;
extern const am_connector_ops am_connector_salesforce;

static const am_connector_ops *const connectors[] = {
    &am_connector_csv,
    &am_connector_amocrm,
    &am_connector_bitrix24,
    &am_connector_hubspot,
    &am_connector_postgresql,
    &am_connector_salesforce,
};

const am_connector_ops *am_connector_find(const char *type)
{
    size_t i;

    for (i = 0; i < sizeof(connectors) / sizeof(connectors[0]); i++) {
        if (strcmp(connectors[i]->type, type) == 0) {
            return connectors[i];
        }
    }
    return NULL;
}

const char *am_connector_types(void)
{
    return "csv, amocrm, bitrix24, hubspot, postgresql, salesforce";
}

am_status am_source_open(am_source **out, const am_source_config *cfg, const am_source_env *env,
                         am_error *err)
{
    static const am_source_env no_env;
    const am_connector_ops *ops = am_connector_find(cfg->type);
    am_status rc;

    *out = NULL;
    if (!ops) {
        return am_error_set(err, AM_ECONFIG, "%s.type: unknown source type \"%s\"; use one of: %s",
                            cfg->where, cfg->type, am_connector_types());
    }
    rc = am_source_config_check_fields(cfg, ops->fields, err);
    if (rc) {
        return rc;
    }
    return ops->open(out, cfg, env ? env : &no_env, err);
}

am_status am_source_next_batch(am_source *src, am_record_batch *batch, am_error *err)
{
    return src->ops->next_batch(src, batch, err);
}

void am_source_close(am_source *src)
{
    if (src) {
        src->ops->close(src);
    }
}
