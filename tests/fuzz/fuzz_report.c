/*
 * libFuzzer target: a stored report is untrusted. Whatever loads must render
 * in every text format, and a rendering is one-line-error or bytes, never a
 * crash; the HTML never carries a raw '<' from the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acctmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    am_error err = {AM_OK, ""};
    am_report *r = NULL;
    char *out = NULL;
    size_t len = 0;
    int f;

    if (am_report_load(&r, (const char *)data, size, "fuzz", &err) != AM_OK) {
        if (strchr(err.msg, '\n')) {
            abort();
        }
        return 0;
    }
    for (f = AM_REPORT_JSON; f <= AM_REPORT_HTML; f++) {
        if (am_report_render(&out, &len, r, "20261123T121015Z", (am_report_format)f, &err) ==
            AM_OK) {
            if (f == AM_REPORT_HTML && strstr(out, "<scr")) {
                abort();
            }
            free(out);
        }
    }
    am_report_free(r);
    return 0;
}
