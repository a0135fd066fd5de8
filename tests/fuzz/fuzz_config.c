/* libFuzzer target: any bytes as acctmap.json; the config either loads or says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    am_config *cfg = NULL;
    am_error err = {AM_OK, ""};
    am_status rc = am_config_parse(&cfg, (const char *)data, size, "fuzz.json", ".", &err);
    size_t i, s;

    if (rc == AM_OK) {
        /* Walk everything a connector would read. */
        for (i = 0; i < am_config_org_count(cfg); i++) {
            const am_config_org *o = am_config_org_at(cfg, i);
            for (s = 0; s < o->source_count; s++) {
                const char *v = NULL;
                am_source_config_string(&v, &o->sources[s], "path", false, &err);
                am_source_config_rule_match(&o->sources[s], "customer", 8);
            }
        }
        am_config_free(cfg);
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        abort(); /* every failure has a one-line message */
    }
    return 0;
}
