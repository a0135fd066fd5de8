/*
 * The shared HTTP client of the CRM connectors (see http.h).
 * FIRST COMMIT: stub bodies so that connectors can compile against http.h;
 * the implementation follows on this branch.
 */
#include "http.h"

#include <stdlib.h>
#include <string.h>

void am_http_options_init(am_http_options *opt, double requests_per_s)
{
    memset(opt, 0, sizeof(*opt));
    opt->timeout_s = 60;
    opt->connect_timeout_s = 10;
    opt->max_wait_s = 300;
    opt->max_wait_one_s = 60;
    opt->max_attempts = 5;
    opt->requests_per_s = requests_per_s;
    opt->max_body_bytes = (size_t)64 << 20;
}

static am_status not_yet(am_error *err)
{
    return am_error_set(err, AM_EINTERNAL, "http: not implemented yet");
}

am_status am_http_config_read(am_http_options *opt, const am_source_config *cfg, am_error *err)
{
    (void)opt;
    (void)cfg;
    return not_yet(err);
}

am_status am_http_config_secret(char **value_out, const am_source_config *cfg,
                                const char *field, bool required, am_error *err)
{
    (void)cfg;
    (void)field;
    (void)required;
    *value_out = NULL;
    return not_yet(err);
}

am_status am_http_new(am_http **out, const char *url, const am_http_options *opt,
                      const char *label, const am_source_env *env, am_error *err)
{
    (void)url;
    (void)opt;
    (void)label;
    (void)env;
    *out = NULL;
    return not_yet(err);
}

void am_http_free(am_http *http)
{
    (void)http;
}

am_status am_http_rebind(am_http *http, const char *url, am_error *err)
{
    (void)http;
    (void)url;
    return not_yet(err);
}

const char *am_http_origin(const am_http *http)
{
    (void)http;
    return "";
}

const char *am_http_label(const am_http *http)
{
    (void)http;
    return "";
}

am_status am_http_add_secret(am_http *http, const char *secret)
{
    (void)http;
    (void)secret;
    return AM_OK;
}

void am_http_scrub(const am_http *http, char *text, size_t cap)
{
    (void)http;
    (void)text;
    (void)cap;
}

am_status am_http_send(am_http_response *resp, am_http *http, const am_http_request *rq,
                       am_error *err)
{
    (void)http;
    (void)rq;
    memset(resp, 0, sizeof(*resp));
    return not_yet(err);
}

const char *am_http_response_header(const am_http_response *resp, const char *name)
{
    (void)resp;
    (void)name;
    return NULL;
}

void am_http_response_dispose(am_http_response *resp)
{
    free(resp->content_type);
    free(resp->body);
    free(resp->url_path);
    memset(resp, 0, sizeof(*resp));
}

bool am_http_response_is_json(const am_http_response *resp)
{
    (void)resp;
    return false;
}

am_status am_http_json(json_t **out, am_http *http, const am_http_response *resp,
                       am_error *err)
{
    (void)http;
    (void)resp;
    *out = NULL;
    return not_yet(err);
}

json_t *am_http_error_json(const am_http_response *resp)
{
    (void)resp;
    return NULL;
}

char *am_http_escape(const char *s)
{
    (void)s;
    return NULL;
}

am_status am_http_check_url(am_http *http, const char *url, am_error *err)
{
    (void)http;
    (void)url;
    return not_yet(err);
}

am_status am_http_oauth_setup(am_http *http, const am_http_oauth_config *cfg, am_error *err)
{
    (void)http;
    (void)cfg;
    return not_yet(err);
}

am_status am_http_oauth_refresh(am_http *http, am_error *err)
{
    (void)http;
    return not_yet(err);
}

const char *am_http_oauth_access_token(const am_http *http)
{
    (void)http;
    return NULL;
}

const char *am_http_oauth_instance_url(const am_http *http)
{
    (void)http;
    return NULL;
}

unsigned am_http_oauth_refresh_count(const am_http *http)
{
    (void)http;
    return 0;
}

void am_http_progress(am_http *http, size_t records)
{
    (void)http;
    (void)records;
}

void am_http_stats_get(am_http_stats *out, const am_http *http)
{
    (void)http;
    memset(out, 0, sizeof(*out));
}
