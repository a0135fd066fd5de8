/*
 * The shared HTTP client of the CRM connectors, the only file that calls
 * libcurl (see http.h). Connectors build requests and read JSON; this file
 * owns the origin guard, the request rate, retries and back-off within a
 * bounded wait, the body ceiling, OAuth refresh and secret scrubbing.
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "acctmap/parse.h"

#define USER_AGENT "acctmap/" AM_VERSION
/* First back-off step; doubled on each retry, capped by max_wait_one_s. */
#define BACKOFF_BASE_S 0.5
#define MAX_EXTRA_ORIGINS 4

/* An origin as compared: "scheme://host:port" with the port always written. */
typedef struct origin {
    char key[300];     /* for comparison */
    char display[300]; /* default port left out, for messages */
} origin;

typedef struct header_list {
    char **lines; /* "name: value", CR/LF removed */
    size_t count;
} header_list;

struct am_http {
    CURL *curl;
    CURLU *base;        /* the base URL; relative request URLs resolve against it */
    origin home;        /* the origin of `base`: bearer tokens may go here only */
    origin extra[MAX_EXTRA_ORIGINS]; /* token endpoints: requests without a bearer */
    size_t extra_count;
    am_http_options opt;
    char label[256];
    const am_secret_keeper *keeper;
    char *source_key;
    void (*progress)(void *ctx, const char *line, bool done); /* env's, NULL: quiet */
    void *progress_ctx;
    bool progress_shown;
    char progress_line[512];
    char **secrets;
    size_t secret_count;
    struct curl_slist *connect_to; /* test builds: AM_HTTP_CONNECT_TO */
    double next_slot;   /* monotonic time before which no request starts (rate) */
    uint64_t rand_state;
    am_http_stats stats;
    char curl_msg[CURL_ERROR_SIZE];

    /* OAuth, when am_http_oauth_setup was called. */
    bool oauth;
    am_http_oauth_style style;
    char *token_url;
    char *client_id;
    char *client_secret;
    char *refresh_token;
    char *access_token;
    char *instance_url;
    char *refresh_var;
    bool refresh_from_store; /* the refresh token in use was loaded from the keeper */
    unsigned refresh_count;
};

/* ---- small helpers ------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0) {
        return;
    }
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Uniform in [0, 1): xorshift64*, seeded per client (jitter needs no quality). */
static double next_random(am_http *http)
{
    uint64_t x = http->rand_state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    http->rand_state = x;
    return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static char *dup_s(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);

    if (p) {
        memcpy(p, s, n + 1);
    }
    return p;
}

static void free_secret(char *s)
{
    if (s) {
        volatile char *v = s;
        while (*v) {
            *v++ = '\0';
        }
        free(s);
    }
}

void am_http_scrub(const am_http *http, char *text, size_t cap)
{
    size_t i;

    if (!http || !text) {
        return;
    }
    for (i = 0; i < http->secret_count; i++) {
        const char *secret = http->secrets[i];
        size_t sl = strlen(secret);
        char *hit = strstr(text, secret);

        while (hit) {
            size_t tail = strlen(hit + sl);
            size_t at = (size_t)(hit - text);
            /* "***" may be longer than a short secret: keep within cap. */
            if (at + 3 + tail + 1 > cap) {
                tail = cap > at + 4 ? cap - at - 4 : 0;
            }
            memmove(hit + 3, hit + sl, tail);
            hit[3 + tail] = '\0';
            memcpy(hit, "***", 3);
            hit = strstr(hit + 3, secret);
        }
    }
}

/* am_error_set, then scrub every registered secret from the message. */
static am_status fail(am_http *http, am_error *err, am_status status, const char *fmt, ...)
    AM_PRINTF(4, 5);

static am_status fail(am_http *http, am_error *err, am_status status, const char *fmt, ...)
{
    va_list ap;

    if (!err) {
        return status;
    }
    err->status = status;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    am_http_scrub(http, err->msg, sizeof(err->msg));
    return status;
}

/* ---- origins and URLs ---------------------------------------------------- */

/* Parse `url` (absolute) into a CURLU and its origin. Only http and https. */
static am_status parse_origin(CURLU **out, origin *o, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    am_status rc = AM_EINVAL;
    size_t i;

    *out = NULL;
    if (!u) {
        return AM_ENOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        goto cleanup;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        goto cleanup;
    }
    for (i = 0; host[i]; i++) {
        host[i] = (char)tolower((unsigned char)host[i]);
    }
    snprintf(o->key, sizeof(o->key), "%s://%s:%s", scheme, host, port);
    if ((strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
        (strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0)) {
        snprintf(o->display, sizeof(o->display), "%s://%s", scheme, host);
    } else {
        snprintf(o->display, sizeof(o->display), "%s://%s:%s", scheme, host, port);
    }
    *out = u;
    u = NULL;
    rc = AM_OK;
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* The host of an absolute or relative `url` as written, into buf ("" if none). */
static void host_of(char *buf, size_t cap, const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;

    buf[0] = '\0';
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        snprintf(buf, cap, "%s", host);
    }
    curl_free(host);
    curl_url_cleanup(u);
}

/*
 * Resolve `url` against the base, check its origin. On success *full_out
 * and *path_out are curl_free'd strings. `with_bearer`: only the home origin.
 */
static am_status resolve_url(char **full_out, char **path_out, am_http *http, const char *url,
                             const char *method, bool with_bearer, am_error *err)
{
    CURLU *u = curl_url_dup(http->base);
    CURLU *check = NULL;
    char *full = NULL, *path = NULL;
    origin o;
    am_status rc = AM_OK;
    bool allowed = false;
    size_t i;

    *full_out = NULL;
    *path_out = NULL;
    if (!u) {
        return fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
    }
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        rc = fail(http, err, AM_EHTTP, "%s: %s: the URL to request is not valid; this is a bug "
                  "or a damaged answer from the server", http->label, method);
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        path = NULL;
    }
    if (parse_origin(&check, &o, full) != AM_OK) {
        rc = fail(http, err, AM_EHTTP, "%s: %s %s: not an http or https URL; refused",
                  http->label, method, path ? path : "/");
        goto cleanup;
    }
    if (strcmp(o.key, http->home.key) == 0) {
        allowed = true;
    }
    for (i = 0; !with_bearer && i < http->extra_count; i++) {
        if (strcmp(o.key, http->extra[i].key) == 0) {
            allowed = true;
        }
    }
    if (!allowed) {
        rc = fail(http, err, AM_EHTTP,
                  "%s: %s %s: refused a link to %s, which is not the source's own origin %s; "
                  "nothing was sent there (check base_url, or report the CRM's answer)",
                  http->label, method, path ? path : "/", o.display, http->home.display);
        goto cleanup;
    }
    *full_out = full;
    *path_out = path;
    full = NULL;
    path = NULL;
cleanup:
    curl_free(full);
    curl_free(path);
    curl_url_cleanup(u);
    curl_url_cleanup(check);
    return rc;
}

am_status am_http_check_url(am_http *http, const char *url, am_error *err)
{
    char *full = NULL, *path = NULL;
    am_status rc = resolve_url(&full, &path, http, url, "GET", true, err);

    curl_free(full);
    curl_free(path);
    return rc;
}

char *am_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? dup_s(e) : NULL;

    curl_free(e);
    return out;
}

/* ---- config -------------------------------------------------------------- */

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

static am_status read_seconds(double *out, const am_source_config *cfg, const char *field,
                              bool zero_ok, am_error *err)
{
    const char *s = NULL;
    char *end = NULL, buf[64];
    double v;
    am_status rc = am_source_config_number_text(&s, buf, cfg, field, err);

    if (rc || !s) {
        return rc;
    }
    errno = 0;
    v = strtod(s, &end);
    if (!*s || isspace((unsigned char)*s) || *end || errno || !isfinite(v) || v < 0 ||
        (!zero_ok && v == 0) || v > 86400) {
        return am_error_set(err, AM_ECONFIG, "%s.%s: \"%s\" is not a number of seconds %s; "
                            "write a number such as 0.5", cfg->where, field, s,
                            zero_ok ? "from 0 to 86400" : "above 0 and up to 86400");
    }
    *out = v;
    return AM_OK;
}

static am_status read_count(uint64_t *out, const am_source_config *cfg, const char *field,
                            uint64_t lo, uint64_t hi, am_error *err)
{
    const char *s = NULL;
    char buf[64];
    uint64_t v = 0;
    am_error ignored = {0};
    am_status rc = am_source_config_number_text(&s, buf, cfg, field, err);

    if (rc || !s) {
        return rc;
    }
    if (am_parse_u64(&v, s, strlen(s), &ignored) != AM_OK || v < lo || v > hi) {
        return am_error_set(err, AM_ECONFIG, "%s.%s: \"%s\" is not a whole number from %llu "
                            "to %llu", cfg->where, field, s, (unsigned long long)lo,
                            (unsigned long long)hi);
    }
    *out = v;
    return AM_OK;
}

am_status am_http_config_read(am_http_options *opt, const am_source_config *cfg, am_error *err)
{
    const char *base = NULL;
    uint64_t n;
    am_status rc;

    rc = am_source_config_string(&base, cfg, "base_url", false, err);
    if (rc) {
        return rc;
    }
    if (base) {
        CURLU *u = NULL;
        origin o;
        pthread_once(&curl_once, curl_init_once);
        if (parse_origin(&u, &o, base) != AM_OK) {
            return am_error_set(err, AM_ECONFIG, "%s.base_url: \"%s\" is not an http or https "
                                "URL; write it like \"https://example.bitrix24.ru/rest/\"",
                                cfg->where, base);
        }
        curl_url_cleanup(u);
        opt->base_url = base;
    }
    if ((rc = read_seconds(&opt->timeout_s, cfg, "timeout_s", false, err)) ||
        (rc = read_seconds(&opt->connect_timeout_s, cfg, "connect_timeout_s", false, err)) ||
        (rc = read_seconds(&opt->max_wait_s, cfg, "max_wait_s", true, err)) ||
        (rc = read_seconds(&opt->max_wait_one_s, cfg, "max_wait_one_s", true, err)) ||
        (rc = read_seconds(&opt->requests_per_s, cfg, "requests_per_s", true, err))) {
        return rc;
    }
    n = opt->max_attempts;
    rc = read_count(&n, cfg, "max_attempts", 1, 100, err);
    if (rc) {
        return rc;
    }
    opt->max_attempts = (unsigned)n;
    n = opt->max_body_bytes >> 20;
    rc = read_count(&n, cfg, "max_body_mb", 1, 4096, err);
    if (rc) {
        return rc;
    }
    if (n != (opt->max_body_bytes >> 20)) {
        opt->max_body_bytes = (size_t)n << 20;
    }
    return AM_OK;
}

am_status am_http_config_secret(char **value_out, const am_source_config *cfg,
                                const char *field, bool required, am_error *err)
{
    const char *var = NULL;
    const char *value;
    am_status rc;

    *value_out = NULL;
    rc = am_source_config_string(&var, cfg, field, required, err);
    if (rc || !var) {
        return rc;
    }
    value = *var ? getenv(var) : NULL;
    if (!value || !*value) {
        return am_error_set(err, AM_ECONFIG, "%s.%s: environment variable %s is not set or "
                            "empty; export it before the run", cfg->where, field,
                            *var ? var : "(empty name)");
    }
    *value_out = dup_s(value);
    if (!*value_out) {
        return am_error_set(err, AM_ENOMEM, "%s.%s: out of memory", cfg->where, field);
    }
    return AM_OK;
}

/* ---- the client ---------------------------------------------------------- */

am_status am_http_add_secret(am_http *http, const char *secret)
{
    char **grown;
    char *copy;
    size_t i;

    if (!http || !secret || !*secret) {
        return AM_OK;
    }
    for (i = 0; i < http->secret_count; i++) {
        if (strcmp(http->secrets[i], secret) == 0) {
            return AM_OK;
        }
    }
    grown = realloc(http->secrets, (http->secret_count + 1) * sizeof(*grown));
    if (!grown) {
        return AM_ENOMEM;
    }
    http->secrets = grown;
    copy = dup_s(secret);
    if (!copy) {
        return AM_ENOMEM;
    }
    http->secrets[http->secret_count++] = copy;
    /* The label goes into every message and progress line: keep it clean too. */
    am_http_scrub(http, http->label, sizeof(http->label));
    return AM_OK;
}

#ifdef AM_DEBUG
/* Test builds: map host names to loopback listeners (tests/fake_crm.h). */
static am_status load_connect_to(am_http *http, am_error *err)
{
    const char *env = getenv("AM_HTTP_CONNECT_TO");
    char *copy, *p;

    if (!env || !*env) {
        return AM_OK;
    }
    copy = dup_s(env);
    if (!copy) {
        return fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
    }
    p = copy;
    while (p && *p) {
        char *comma = strchr(p, ',');
        struct curl_slist *grown;
        if (comma) {
            *comma = '\0';
        }
        grown = curl_slist_append(http->connect_to, p);
        if (!grown) {
            free(copy);
            return fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
        }
        http->connect_to = grown;
        p = comma ? comma + 1 : NULL;
    }
    free(copy);
    return AM_OK;
}
#endif

am_status am_http_new(am_http **out, const char *url, const am_http_options *opt,
                      const char *label, const am_source_env *env, am_error *err)
{
    am_http *http = NULL;
    am_status rc = AM_OK;

    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    http = calloc(1, sizeof(*http));
    if (!http) {
        return am_error_set(err, AM_ENOMEM, "%s: out of memory", label ? label : "http");
    }
    snprintf(http->label, sizeof(http->label), "%s", label ? label : "http");
    if (opt) {
        http->opt = *opt;
    } else {
        am_http_options_init(&http->opt, 0);
    }
    if (http->opt.max_attempts < 1) {
        http->opt.max_attempts = 1;
    }
    http->opt.base_url = NULL; /* borrowed from the config: not kept */
    if (env) {
        http->keeper = env->secrets;
        http->progress = env->progress;
        http->progress_ctx = env->progress_ctx;
        if (env->source_key) {
            http->source_key = dup_s(env->source_key);
            if (!http->source_key) {
                rc = am_error_set(err, AM_ENOMEM, "%s: out of memory", http->label);
                goto cleanup;
            }
        }
    }
    http->rand_state = ((uint64_t)(uintptr_t)http ^ (uint64_t)time(NULL) ^
                        (uint64_t)(now_s() * 1e9)) | 1;
    if (!url || parse_origin(&http->base, &http->home, url) != AM_OK) {
        rc = am_error_set(err, AM_ECONFIG, "%s: \"%s\" is not an http or https URL; check "
                          "base_url or instance_url", http->label, url ? url : "");
        goto cleanup;
    }
    http->curl = curl_easy_init();
    if (!http->curl) {
        rc = am_error_set(err, AM_ENOMEM, "%s: cannot start the HTTP client", http->label);
        goto cleanup;
    }
#ifdef AM_DEBUG
    rc = load_connect_to(http, err);
    if (rc) {
        goto cleanup;
    }
#endif
    *out = http;
    http = NULL;
cleanup:
    am_http_free(http);
    return rc;
}

am_status am_http_rebind(am_http *http, const char *url, am_error *err)
{
    CURLU *u = NULL;
    origin o;

    if (!url || parse_origin(&u, &o, url) != AM_OK) {
        return fail(http, err, AM_ECONFIG, "%s: \"%s\" is not an http or https URL",
                    http->label, url ? url : "");
    }
    curl_url_cleanup(http->base);
    http->base = u;
    http->home = o;
    return AM_OK;
}

const char *am_http_origin(const am_http *http)
{
    return http->home.display;
}

const char *am_http_label(const am_http *http)
{
    return http->label;
}

void am_http_free(am_http *http)
{
    size_t i;

    if (!http) {
        return;
    }
    if (http->progress_shown) {
        http->progress(http->progress_ctx, http->progress_line, true);
    }
    if (http->curl) {
        curl_easy_cleanup(http->curl);
    }
    curl_url_cleanup(http->base);
    curl_slist_free_all(http->connect_to);
    for (i = 0; i < http->secret_count; i++) {
        free_secret(http->secrets[i]);
    }
    free(http->secrets);
    free(http->source_key);
    free(http->token_url);
    free(http->client_id);
    free_secret(http->client_secret);
    free_secret(http->refresh_token);
    free_secret(http->access_token);
    free(http->instance_url);
    free(http->refresh_var);
    free(http);
}

/* ---- progress ------------------------------------------------------------ */

static void show_progress(am_http *http, const char *what)
{
    char *line = http->progress_line;

    if (!http->progress) {
        return;
    }
    snprintf(line, sizeof(http->progress_line), "%s: %zu pages, %zu records, waited %.1f s%s%s", http->label,
             http->stats.pages, http->stats.records, http->stats.waited_s, what ? "; " : "",
             what ? what : "");
    am_http_scrub(http, line, sizeof(http->progress_line));
    http->progress(http->progress_ctx, line, false);
    http->progress_shown = true;
}

void am_http_progress(am_http *http, size_t records)
{
    http->stats.records += records;
    show_progress(http, NULL);
}

void am_http_stats_get(am_http_stats *out, const am_http *http)
{
    *out = http->stats;
}

/* ---- responses ----------------------------------------------------------- */

typedef struct transfer {
    am_http *http;
    char *body;
    size_t len, cap;
    bool too_big;
    header_list headers;
} transfer;

static void headers_clear(header_list *h)
{
    size_t i;

    for (i = 0; i < h->count; i++) {
        free(h->lines[i]);
    }
    free(h->lines);
    h->lines = NULL;
    h->count = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t n = size * nmemb;

    if (t->len + n > t->http->opt.max_body_bytes) {
        t->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        char *grown;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        grown = realloc(t->body, cap);
        if (!grown) {
            return 0;
        }
        t->body = grown;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t n = size * nmemb, len = n;
    char **grown;
    char *line;

    /* A new status line (after a 100 Continue) starts a new header set. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        headers_clear(&t->headers);
        return n;
    }
    while (len && (data[len - 1] == '\r' || data[len - 1] == '\n')) {
        len--;
    }
    if (!len || !memchr(data, ':', len)) {
        return n;
    }
    grown = realloc(t->headers.lines, (t->headers.count + 1) * sizeof(*grown));
    if (!grown) {
        return 0;
    }
    t->headers.lines = grown;
    line = malloc(len + 1);
    if (!line) {
        return 0;
    }
    memcpy(line, data, len);
    line[len] = '\0';
    t->headers.lines[t->headers.count++] = line;
    return n;
}

const char *am_http_response_header(const am_http_response *resp, const char *name)
{
    const header_list *h = resp->priv_;
    size_t i, n = strlen(name);

    if (!h) {
        return NULL;
    }
    for (i = h->count; i-- > 0;) {
        const char *line = h->lines[i];
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            line += n + 1;
            while (*line == ' ' || *line == '\t') {
                line++;
            }
            return line;
        }
    }
    return NULL;
}

void am_http_response_dispose(am_http_response *resp)
{
    if (!resp) {
        return;
    }
    free(resp->content_type);
    free(resp->body);
    free(resp->url_path);
    if (resp->priv_) {
        headers_clear(resp->priv_);
        free(resp->priv_);
    }
    memset(resp, 0, sizeof(*resp));
}

bool am_http_response_is_json(const am_http_response *resp)
{
    const char *ct = resp->content_type;
    size_t len;
    const char *semi;

    if (!ct) {
        return false;
    }
    semi = strchr(ct, ';');
    len = semi ? (size_t)(semi - ct) : strlen(ct);
    while (len && ct[len - 1] == ' ') {
        len--;
    }
    if (len == 16 && strncasecmp(ct, "application/json", 16) == 0) {
        return true;
    }
    return len > 5 && strncasecmp(ct + len - 5, "+json", 5) == 0;
}

json_t *am_http_error_json(const am_http_response *resp)
{
    if (!resp->body || !resp->body_len || !am_http_response_is_json(resp)) {
        return NULL;
    }
    return json_loadb(resp->body, resp->body_len, 0, NULL);
}

am_status am_http_json(json_t **out, am_http *http, const am_http_response *resp,
                       am_error *err)
{
    json_error_t jerr;
    const char *path = resp->url_path ? resp->url_path : "/";

    *out = NULL;
    if (!resp->body || resp->body_len == 0) {
        return AM_OK;
    }
    /* An HTML page from a proxy is never parsed as JSON; a missing type is tried. */
    if (resp->content_type && !am_http_response_is_json(resp)) {
        return fail(http, err, AM_EINPUT, "%s: %s: answered %s, not JSON (HTTP %ld); a proxy "
                    "or an error page sits in front of the API, check base_url",
                    http->label, path, resp->content_type, resp->status);
    }
    *out = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (!*out) {
        /* jansson quotes the bytes "near" the error: page data stays out of messages. */
        char *near = strstr(jerr.text, " near ");
        if (near) {
            *near = '\0';
        }
        return fail(http, err, AM_EINPUT, "%s: %s: invalid JSON at byte %d of %zu (%s); the "
                    "answer was cut off or is damaged, run again", http->label, path,
                    jerr.position, resp->body_len, jerr.text);
    }
    return AM_OK;
}

/* ---- sending ------------------------------------------------------------- */

/* Wait for the source's request rate; counts the time in stats.spaced_s. */
static void wait_for_slot(am_http *http)
{
    double t = now_s();

    if (http->opt.requests_per_s > 0) {
        if (t < http->next_slot) {
            double d = http->next_slot - t;
            sleep_s(d);
            http->stats.spaced_s += d;
            t = http->next_slot;
        }
        http->next_slot = t + 1.0 / http->opt.requests_per_s;
    }
}

/* Seconds of a Retry-After header (delta or HTTP date); negative when none. */
static double retry_after_s(const am_http_response *resp)
{
    const char *v = am_http_response_header(resp, "Retry-After");
    uint64_t n = 0;
    am_error ignored = {0};
    size_t len;

    if (!v) {
        return -1;
    }
    len = strlen(v);
    while (len && isspace((unsigned char)v[len - 1])) {
        len--;
    }
    if (am_parse_u64(&n, v, len, &ignored) == AM_OK) {
        return (double)n;
    }
    {
        time_t when = curl_getdate(v, NULL);
        if (when > 0) {
            double d = difftime(when, time(NULL));
            return d > 0 ? d : 0;
        }
    }
    return -1;
}

/* One try: fills resp (status, type, body, headers); returns the curl code. */
static CURLcode perform(am_http_response *resp, transfer *t, am_http *http, const char *url,
                        const am_http_request *rq, const char *method, bool *too_big)
{
    CURL *c = http->curl;
    struct curl_slist *hdrs = NULL, *grown;
    char line[8192];
    CURLcode cc;
    char *ct = NULL;
    size_t i;

    *too_big = false;
    curl_easy_reset(c);
    http->curl_msg[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(http->opt.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(http->opt.connect_timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, http->curl_msg);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    if ((curl_off_t)http->opt.max_body_bytes > 0) {
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)http->opt.max_body_bytes);
    }
    if (http->connect_to) {
        curl_easy_setopt(c, CURLOPT_CONNECT_TO, http->connect_to);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (rq->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    /* Build the header list; an allocation failure drops to a clean CURLE_OUT_OF_MEMORY. */
    if (rq->bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", rq->bearer);
        grown = curl_slist_append(hdrs, line);
        if (!grown) {
            goto oom;
        }
        hdrs = grown;
    }
    if (rq->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", rq->content_type);
        grown = curl_slist_append(hdrs, line);
        if (!grown) {
            goto oom;
        }
        hdrs = grown;
    }
    /* No "Expect: 100-continue" round trip for bodies. */
    grown = curl_slist_append(hdrs, "Expect:");
    if (!grown) {
        goto oom;
    }
    hdrs = grown;
    for (i = 0; rq->headers && rq->headers[i]; i++) {
        grown = curl_slist_append(hdrs, rq->headers[i]);
        if (!grown) {
            goto oom;
        }
        hdrs = grown;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    memset(line, 0, sizeof(line));

    cc = curl_easy_perform(c);
    http->stats.requests++;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
        resp->content_type = dup_s(ct);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    *too_big = t->too_big || cc == CURLE_FILESIZE_EXCEEDED;
    return cc;
oom:
    memset(line, 0, sizeof(line));
    curl_slist_free_all(hdrs);
    return CURLE_OUT_OF_MEMORY;
}

/* Network failures worth another try. */
static bool transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* A short description of the answer for messages: "HTTP 502 (text/html, not JSON)". */
static void describe(char *buf, size_t cap, const am_http_response *resp)
{
    if (resp->content_type && !am_http_response_is_json(resp)) {
        snprintf(buf, cap, "HTTP %ld (%s, not JSON)", resp->status, resp->content_type);
    } else {
        snprintf(buf, cap, "HTTP %ld", resp->status);
    }
}

static am_status send_checked(am_http_response *resp, am_http *http, const am_http_request *rq,
                              am_error *err)
{
    const char *method = rq->method ? rq->method : "GET";
    char *url = NULL, *path = NULL;
    am_status rc = AM_OK;
    unsigned attempt;
    double waited = 0;

    am_http_response_dispose(resp); /* zeroed, or the answer of an earlier call */
    rc = resolve_url(&url, &path, http, rq->url, method, rq->bearer != NULL, err);
    if (rc) {
        return rc;
    }
    resp->url_path = dup_s(path ? path : "/");
    if (!resp->url_path) {
        rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
        goto cleanup;
    }
    am_http_scrub(http, resp->url_path, strlen(resp->url_path) + 1);

    for (attempt = 1;; attempt++) {
        transfer t = {.http = http};
        am_http_verdict verdict = AM_HTTP_DEFAULT;
        double hint = -1, wait;
        char why[128] = "", what[256];
        bool too_big = false, rate_limited = false;
        CURLcode cc;

        /* Each try starts from a clean answer; the last one stays in resp. */
        free(resp->content_type);
        free(resp->body);
        if (resp->priv_) {
            headers_clear(resp->priv_);
            free(resp->priv_);
        }
        resp->content_type = NULL;
        resp->body = NULL;
        resp->body_len = 0;
        resp->priv_ = NULL;
        resp->status = 0;

        wait_for_slot(http);
        cc = perform(resp, &t, http, url, rq, method, &too_big);
        resp->attempts = attempt;
        resp->priv_ = malloc(sizeof(header_list));
        if (resp->priv_) {
            *(header_list *)resp->priv_ = t.headers;
        } else {
            headers_clear(&t.headers);
        }
        resp->body = t.body ? t.body : dup_s("");
        resp->body_len = t.len;
        if (!resp->body || !resp->priv_) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
            goto cleanup;
        }
        if (too_big) {
            rc = fail(http, err, AM_ELIMIT, "%s: %s %s: the answer is larger than the %zu MiB "
                      "ceiling; raise max_body_mb or ask for smaller pages", http->label,
                      method, resp->url_path, http->opt.max_body_bytes >> 20);
            goto cleanup;
        }
        if (cc == CURLE_OUT_OF_MEMORY) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
            goto cleanup;
        }
        if (cc != CURLE_OK) {
            snprintf(what, sizeof(what), "%s", http->curl_msg[0] ? http->curl_msg
                                                                  : curl_easy_strerror(cc));
            if (!transient(cc)) {
                rc = fail(http, err, AM_ENET, "%s: %s %s: %s; check the address and the "
                          "network", http->label, method, resp->url_path, what);
                goto cleanup;
            }
        } else if (resp->status >= 200 && resp->status < 300) {
            http->stats.pages++;
            show_progress(http, NULL);
            goto cleanup;
        } else if (resp->status >= 300 && resp->status < 400) {
            const char *loc = am_http_response_header(resp, "Location");
            char host[256];
            host_of(host, sizeof(host), loc ? loc : "");
            rc = fail(http, err, AM_EHTTP, "%s: %s %s: HTTP %ld redirect to %s not followed; "
                      "set base_url to the API's own address", http->label, method,
                      resp->url_path, resp->status,
                      host[0] ? host : "the same host");
            goto cleanup;
        } else {
            if (rq->classify) {
                verdict = rq->classify(rq->classify_ctx, resp, &hint, why, sizeof(why));
            }
            switch (verdict) {
            case AM_HTTP_ACCEPT:
                goto cleanup;
            case AM_HTTP_FAIL_LIMIT:
                describe(what, sizeof(what), resp);
                rc = fail(http, err, AM_ELIMIT, "%s: %s %s: %s%s%s: a limit that waiting in "
                          "this run cannot lift; run again when the CRM's allowance resets",
                          http->label, method, resp->url_path, what, why[0] ? " " : "", why);
                goto cleanup;
            case AM_HTTP_RATE_LIMITED:
                rate_limited = true;
                break;
            case AM_HTTP_RETRY:
                break;
            case AM_HTTP_DEFAULT:
            default:
                if (resp->status == 429) {
                    rate_limited = true;
                } else if (resp->status >= 500) {
                    break;
                } else if (resp->status == 401 || resp->status == 403) {
                    describe(what, sizeof(what), resp);
                    rc = fail(http, err, AM_EAUTH, "%s: %s %s: %s%s%s: the credentials were "
                              "refused; check the token and its permissions", http->label,
                              method, resp->url_path, what, why[0] ? " " : "", why);
                    goto cleanup;
                } else {
                    describe(what, sizeof(what), resp);
                    rc = fail(http, err, AM_EHTTP, "%s: %s %s: unexpected %s%s%s; check "
                              "base_url and the source's settings", http->label, method,
                              resp->url_path, what, why[0] ? " " : "", why);
                    goto cleanup;
                }
                break;
            }
            describe(what, sizeof(what), resp);
            if (why[0]) {
                size_t used = strlen(what);
                snprintf(what + used, sizeof(what) - used, " %s", why);
            }
        }

        /* A retryable failure: back off, unless the tries or the budget are spent. */
        {
            double ra = cc == CURLE_OK ? retry_after_s(resp) : -1;
            if (hint >= 0) {
                wait = hint;
            } else if (ra >= 0) {
                wait = ra;
            } else {
                /* Exponential, with "equal jitter": half fixed, half random. */
                wait = BACKOFF_BASE_S * pow(2.0, (double)(attempt - 1));
                if (wait > http->opt.max_wait_one_s) {
                    wait = http->opt.max_wait_one_s;
                }
                wait = wait / 2 + next_random(http) * wait / 2;
            }
            if (wait > http->opt.max_wait_one_s) {
                wait = http->opt.max_wait_one_s;
            }
        }
        if (attempt >= http->opt.max_attempts ||
            http->stats.waited_s + wait > http->opt.max_wait_s) {
            const char *reason = attempt >= http->opt.max_attempts
                                     ? "max_attempts"
                                     : "the source's back-off budget max_wait_s";
            if (cc != CURLE_OK) {
                rc = fail(http, err, AM_ENET, "%s: %s %s: %s, %u attempts (%s reached); check "
                          "the address and the network, or run later", http->label, method,
                          resp->url_path, what, attempt, reason);
            } else if (rate_limited) {
                rc = fail(http, err, AM_ELIMIT, "%s: %s %s: still rate limited (%s) after %u "
                          "attempts and %.1f s of waiting (%s reached); raise max_wait_s or "
                          "run later", http->label, method, resp->url_path, what, attempt,
                          waited, reason);
            } else {
                rc = fail(http, err, AM_EHTTP, "%s: %s %s: %s after %u attempts (%s reached); "
                          "the server or a proxy in front of it is failing, run later",
                          http->label, method, resp->url_path, what, attempt, reason);
            }
            goto cleanup;
        }
        http->stats.retries++;
        http->stats.waited_s += wait;
        waited += wait;
        resp->waited_s = waited;
        {
            char note[300];
            snprintf(note, sizeof(note), "waiting %.1f s after %s", wait, what);
            show_progress(http, note);
        }
        sleep_s(wait);
    }
cleanup:
    curl_free(url);
    curl_free(path);
    return rc;
}

am_status am_http_send(am_http_response *resp, am_http *http, const am_http_request *rq,
                       am_error *err)
{
    return send_checked(resp, http, rq, err);
}

/* ---- OAuth --------------------------------------------------------------- */

static am_status set_string(char **slot, const char *value)
{
    char *copy = NULL;

    if (value) {
        copy = dup_s(value);
        if (!copy) {
            return AM_ENOMEM;
        }
    }
    free_secret(*slot);
    *slot = copy;
    return AM_OK;
}

/* The keeper's name of this source's refresh token; false when there is none. */
static bool secret_name(char *buf, size_t cap, const am_http *http)
{
    int n;

    if (!http->keeper || !http->source_key) {
        return false;
    }
    n = snprintf(buf, cap, "%s.refresh_token", http->source_key);
    return n > 0 && (size_t)n < cap;
}

am_status am_http_oauth_setup(am_http *http, const am_http_oauth_config *cfg, am_error *err)
{
    CURLU *u = NULL;
    origin o;
    char name[256];
    char *saved = NULL;
    am_status rc = AM_OK;

    if (!cfg->token_url || parse_origin(&u, &o, cfg->token_url) != AM_OK) {
        return fail(http, err, AM_ECONFIG, "%s: the token URL \"%s\" is not an http or https "
                    "URL", http->label, cfg->token_url ? cfg->token_url : "");
    }
    curl_url_cleanup(u);
    if (strcmp(o.key, http->home.key) != 0 && http->extra_count < MAX_EXTRA_ORIGINS) {
        http->extra[http->extra_count++] = o;
    }
    if (set_string(&http->token_url, cfg->token_url) ||
        set_string(&http->client_id, cfg->client_id) ||
        set_string(&http->client_secret, cfg->client_secret) ||
        set_string(&http->access_token, cfg->access_token) ||
        set_string(&http->refresh_var, cfg->refresh_var ? cfg->refresh_var
                                                        : "the refresh token variable") ||
        am_http_add_secret(http, cfg->client_secret) ||
        am_http_add_secret(http, cfg->access_token) ||
        am_http_add_secret(http, cfg->refresh_token)) {
        return fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
    }
    http->style = cfg->style;
    /* A token saved by an earlier run wins: the one in the environment was rotated away. */
    if (secret_name(name, sizeof(name), http)) {
        am_error kerr = {0};
        rc = http->keeper->load(http->keeper->ctx, name, &saved, &kerr);
        if (rc == AM_ENOTFOUND) {
            rc = AM_OK;
        } else if (rc) {
            am_http_scrub(http, kerr.msg, sizeof(kerr.msg));
            if (err) {
                *err = kerr;
            }
            return rc;
        }
    }
    if (saved && *saved) {
        if (am_http_add_secret(http, saved) || set_string(&http->refresh_token, saved)) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
        }
        http->refresh_from_store = true;
    } else if (cfg->refresh_token && *cfg->refresh_token) {
        if (set_string(&http->refresh_token, cfg->refresh_token)) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
        }
    } else {
        rc = fail(http, err, AM_ECONFIG, "%s: no refresh token: set %s%s%s%s", http->label,
                  http->refresh_var, cfg->refresh_field ? " (named by " : "",
                  cfg->refresh_field ? cfg->refresh_field : "", cfg->refresh_field ? ")" : "");
    }
    free_secret(saved);
    if (!rc) {
        http->oauth = true;
    }
    return rc;
}

/* Append "&name=value" (URL-encoded) to a malloc'd form string. */
static am_status form_add(char **form, const char *name, const char *value)
{
    char *ev = curl_easy_escape(NULL, value, 0);
    size_t old = *form ? strlen(*form) : 0;
    size_t need = old + strlen(name) + (ev ? strlen(ev) : 0) + 3;
    char *grown;

    if (!ev) {
        return AM_ENOMEM;
    }
    grown = realloc(*form, need);
    if (!grown) {
        curl_free(ev);
        return AM_ENOMEM;
    }
    snprintf(grown + old, need - old, "%s%s=%s", old ? "&" : "", name, ev);
    curl_free(ev);
    *form = grown;
    return AM_OK;
}

/* The token endpoint's error code when it looks like one ("invalid_grant"), else "". */
static void oauth_error_code(char *buf, size_t cap, const am_http_response *resp)
{
    json_t *root = am_http_error_json(resp);
    const char *code = NULL;
    size_t i;

    buf[0] = '\0';
    if (root && json_is_object(root)) {
        code = json_string_value(json_object_get(root, "error"));
        if (!code) {
            /* amoCRM's problem+json names the cause in "hint" or "title". */
            code = json_string_value(json_object_get(root, "hint"));
        }
    }
    if (code && strlen(code) < cap && strlen(code) < 64) {
        for (i = 0; code[i]; i++) {
            if (!isalnum((unsigned char)code[i]) && code[i] != '_' && code[i] != ' ') {
                break;
            }
        }
        if (!code[i]) {
            snprintf(buf, cap, "%s", code);
        }
    }
    json_decref(root);
}

am_status am_http_oauth_refresh(am_http *http, am_error *err)
{
    am_http_request rq = {0};
    am_http_response resp = {0};
    char *form = NULL, *url = NULL, *body = NULL;
    json_t *root = NULL, *jbody = NULL;
    const char *access, *refresh, *instance;
    char name[256];
    am_status rc = AM_OK;

    if (!http->oauth) {
        return fail(http, err, AM_EINTERNAL, "%s: OAuth refresh without am_http_oauth_setup",
                    http->label);
    }
    http->refresh_count++;
    if (http->style == AM_HTTP_OAUTH_JSON) {
        jbody = json_object();
        if (!jbody || json_object_set_new(jbody, "grant_type", json_string("refresh_token")) ||
            json_object_set_new(jbody, "refresh_token", json_string(http->refresh_token)) ||
            json_object_set_new(jbody, "client_id", json_string(http->client_id ? http->client_id
                                                                                : "")) ||
            (http->client_secret &&
             json_object_set_new(jbody, "client_secret", json_string(http->client_secret)))) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
            goto cleanup;
        }
        body = json_dumps(jbody, JSON_COMPACT);
        if (!body) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
            goto cleanup;
        }
        rq.method = "POST";
        rq.url = http->token_url;
        rq.body = body;
        rq.body_len = strlen(body);
        rq.content_type = "application/json";
    } else {
        if (form_add(&form, "grant_type", "refresh_token") ||
            form_add(&form, "client_id", http->client_id ? http->client_id : "") ||
            (http->client_secret && form_add(&form, "client_secret", http->client_secret)) ||
            form_add(&form, "refresh_token", http->refresh_token)) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
            goto cleanup;
        }
        if (http->style == AM_HTTP_OAUTH_QUERY) {
            size_t need = strlen(http->token_url) + strlen(form) + 2;
            url = malloc(need);
            if (!url) {
                rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
                goto cleanup;
            }
            snprintf(url, need, "%s%c%s", http->token_url,
                     strchr(http->token_url, '?') ? '&' : '?', form);
            rq.method = "GET";
            rq.url = url;
        } else {
            rq.method = "POST";
            rq.url = http->token_url;
            rq.body = form;
            rq.body_len = strlen(form);
            rq.content_type = "application/x-www-form-urlencoded";
        }
    }
    rq.headers = (const char *const[]){"Accept: application/json", NULL};
    rc = am_http_send(&resp, http, &rq, err);
    if (rc == AM_EAUTH || (rc == AM_EHTTP && resp.status >= 400 && resp.status < 500)) {
        char code[64];
        oauth_error_code(code, sizeof(code), &resp);
        char name_note[600] = "";
        if (http->refresh_from_store && secret_name(name, sizeof(name), http)) {
            /* Else the saved token would keep winning over the new one. */
            snprintf(name_note, sizeof(name_note), ", then delete the token the store saved as "
                     "%s (dir: store: secrets/%s)", name, name);
        }
        rc = fail(http, err, AM_EAUTH, "%s: the refresh token was refused (%s); authorise "
                  "acctmap again and set %s%s", http->label, code[0] ? code : "HTTP error",
                  http->refresh_var, name_note);
        goto cleanup;
    }
    if (rc) {
        goto cleanup;
    }
    rc = am_http_json(&root, http, &resp, err);
    if (rc) {
        goto cleanup;
    }
    access = json_string_value(json_object_get(root, "access_token"));
    refresh = json_string_value(json_object_get(root, "refresh_token"));
    instance = json_string_value(json_object_get(root, "instance_url"));
    if (!access || !*access) {
        rc = fail(http, err, AM_EAUTH, "%s: the token endpoint answered without an "
                  "access_token; authorise acctmap again and set %s", http->label,
                  http->refresh_var);
        goto cleanup;
    }
    if (am_http_add_secret(http, access) || (refresh && am_http_add_secret(http, refresh))) {
        rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
        goto cleanup;
    }
    /* A rotated refresh token is saved before anything uses it: the old one is dead now. */
    if (refresh && *refresh && strcmp(refresh, http->refresh_token) != 0) {
        if (secret_name(name, sizeof(name), http)) {
            am_error kerr = {0};
            rc = http->keeper->save(http->keeper->ctx, name, refresh, &kerr);
            if (rc) {
                am_http_scrub(http, kerr.msg, sizeof(kerr.msg));
                rc = fail(http, err, rc, "%s: the new refresh token could not be saved (%s); "
                          "fix the store, then authorise acctmap again and set %s",
                          http->label, kerr.msg, http->refresh_var);
                goto cleanup;
            }
        }
        if (set_string(&http->refresh_token, refresh)) {
            rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
            goto cleanup;
        }
        http->refresh_from_store = secret_name(name, sizeof(name), http);
    }
    if (set_string(&http->access_token, access) ||
        (instance && set_string(&http->instance_url, instance))) {
        rc = fail(http, err, AM_ENOMEM, "%s: out of memory", http->label);
        goto cleanup;
    }
cleanup:
    json_decref(root);
    json_decref(jbody);
    if (body) {
        memset(body, 0, strlen(body));
    }
    free(body);
    if (form) {
        memset(form, 0, strlen(form));
    }
    free(form);
    if (url) {
        memset(url, 0, strlen(url));
    }
    free(url);
    am_http_response_dispose(&resp);
    return rc;
}

am_status am_http_send_oauth(am_http_response *resp, am_http *http, const am_http_request *rq,
                             am_error *err)
{
    am_http_request with_token = *rq;
    bool refreshed = false;
    am_status rc;

    if (!http->oauth) {
        return fail(http, err, AM_EINTERNAL, "%s: OAuth request without am_http_oauth_setup",
                    http->label);
    }
    if (!http->access_token) {
        rc = am_http_oauth_refresh(http, err);
        if (rc) {
            return rc;
        }
        refreshed = true;
    }
    for (;;) {
        with_token.bearer = http->access_token;
        rc = am_http_send(resp, http, &with_token, err);
        if (rc != AM_EAUTH || resp->status != 401 || refreshed) {
            return rc;
        }
        /* An expired access token: one refresh, then the same request again. */
        rc = am_http_oauth_refresh(http, err);
        if (rc) {
            return rc;
        }
        refreshed = true;
    }
}

const char *am_http_oauth_access_token(const am_http *http)
{
    return http->access_token;
}

const char *am_http_oauth_instance_url(const am_http *http)
{
    return http->instance_url;
}

unsigned am_http_oauth_refresh_count(const am_http *http)
{
    return http->refresh_count;
}
