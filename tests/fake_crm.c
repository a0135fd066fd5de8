/*
 * Fake CRM server for tests and the bench (see fake_crm.h): libmicrohttpd
 * on 127.0.0.1, replaying a routes.json manifest by the rules of
 * ../shared/fixtures-crm/README.md and recording every request it gets.
 */
#include "fake_crm.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

/* Request bodies larger than this are cut (the recorded body says so). */
#define MAX_REQUEST_BODY (1u << 20)

typedef struct route {
    size_t index;         /* position in the manifest file */
    const char *method;   /* borrowed from `manifest` */
    const char *path;
    json_t *query;        /* object or NULL */
    json_t *headers_required;
    json_t *body_required;
    unsigned status;
    json_t *headers;      /* response headers */
    char *body;           /* NULL: no body */
    size_t body_len;
    bool optional;
    bool repeat;
    unsigned uses;
} route;

struct am_fake_crm {
    struct MHD_Daemon *daemon;
    unsigned port;
    char origin[64];
    bool other;           /* the "other host" listener */
    json_t *manifest;     /* keeps route strings alive */
    route *routes;
    size_t route_count;
    pthread_mutex_t lock;
    am_fake_request **requests;
    size_t request_count, request_cap;
    size_t connections;
};

/* Per-request state, from the URI log callback until the request completes. */
typedef struct pending {
    char *uri;            /* raw request target: path and query */
    char *body;
    size_t body_len, body_cap;
    bool truncated;
    bool started;  /* the first call (headers only) has been seen */
    bool answered;
} pending;

/* ---- small helpers ------------------------------------------------------- */

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *dup_s(const char *s)
{
    return dup_n(s, strlen(s));
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* URL-decode n bytes ('+' is a space) into a malloc'd string. */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t i, o = 0;

    if (!out) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hex_value((unsigned char)s[i + 1]) >= 0 &&
                   hex_value((unsigned char)s[i + 2]) >= 0) {
            out[o++] = (char)(hex_value((unsigned char)s[i + 1]) * 16 +
                              hex_value((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Decoded value of `name` in a "a=1&b=2" string; malloc'd, NULL when absent. */
static char *form_get(const char *form, const char *name)
{
    const char *p = form;
    size_t name_len = strlen(name);

    while (p && *p) {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *key;

        eq = memchr(p, '=', len);
        key = url_decode(p, eq ? (size_t)(eq - p) : len);
        if (key && strlen(key) == name_len && memcmp(key, name, name_len) == 0) {
            free(key);
            if (!eq) {
                return dup_s("");
            }
            return url_decode(eq + 1, len - (size_t)(eq + 1 - p));
        }
        free(key);
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* `pattern` with '*' standing for any run of characters, matched against all of `s`. */
static bool glob_match(const char *pattern, const char *s)
{
    const char *star = NULL, *resume = NULL;

    while (*s) {
        if (*pattern == '*') {
            star = pattern++;
            resume = s;
        } else if (*pattern == *s) {
            pattern++;
            s++;
        } else if (star) {
            pattern = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*') {
        pattern++;
    }
    return *pattern == '\0';
}

/* A manifest value pattern: string (glob), null (absent), or an array of those. */
static bool value_matches(const json_t *pattern, const char *value)
{
    size_t i;
    json_t *alt;

    if (json_is_null(pattern)) {
        return value == NULL;
    }
    if (json_is_string(pattern)) {
        return value && glob_match(json_string_value(pattern), value);
    }
    if (json_is_array(pattern)) {
        json_array_foreach(pattern, i, alt) {
            if (value_matches(alt, value)) {
                return true;
            }
        }
    }
    return false;
}

/* Path segments compare exactly, except a route segment "*" matching one non-empty segment. */
static bool path_matches(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        const char *pe = strchr(pattern, '/');
        const char *se = strchr(path, '/');
        size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t sl = se ? (size_t)(se - path) : strlen(path);

        if (pl == 1 && pattern[0] == '*') {
            if (sl == 0) {
                return false;
            }
        } else if (pl != sl || memcmp(pattern, path, pl) != 0) {
            return false;
        }
        pattern += pl;
        path += sl;
        if (*pattern == '/' && *path == '/') {
            pattern++;
            path++;
        } else if (*pattern || *path) {
            return false;
        } else {
            return true;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* ---- recorded requests --------------------------------------------------- */

const char *am_fake_request_header(const am_fake_request *rq, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < rq->header_count; i++) {
        const char *h = rq->headers[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ' || *h == '\t') {
                h++;
            }
            return h;
        }
    }
    return NULL;
}

static bool body_is_json(const am_fake_request *rq)
{
    const char *ct = am_fake_request_header(rq, "Content-Type");

    return ct && strncasecmp(ct, "application/json", 16) == 0;
}

/* A JSON scalar as text ("50" for 50); NULL for null; compact JSON for the rest. */
static char *json_text(const json_t *v)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return dup_n(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return dup_s(buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return dup_s(buf);
    case JSON_TRUE:
        return dup_s("true");
    case JSON_FALSE:
        return dup_s("false");
    case JSON_NULL:
        return NULL;
    default:
        return json_dumps(v, JSON_COMPACT);
    }
}

char *am_fake_request_param(const am_fake_request *rq, const char *name, bool from_body)
{
    if (!from_body) {
        return form_get(rq->query, name);
    }
    if (body_is_json(rq)) {
        json_t *root = json_loadb(rq->body, rq->body_len, 0, NULL);
        json_t *v = root && json_is_object(root) ? json_object_get(root, name) : NULL;
        char *text = v ? json_text(v) : NULL;
        json_decref(root);
        return text;
    }
    return form_get(rq->body, name);
}

static void request_free(am_fake_request *rq)
{
    size_t i;

    if (!rq) {
        return;
    }
    free(rq->method);
    free(rq->path);
    free(rq->query);
    free(rq->body);
    for (i = 0; i < rq->header_count; i++) {
        free(rq->headers[i]);
    }
    free(rq->headers);
    free(rq);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    am_fake_request *rq = cls;
    size_t kl = strlen(key), vl = value ? strlen(value) : 0;
    char **grown = realloc(rq->headers, (rq->header_count + 1) * sizeof(*grown));
    char *line;

    (void)kind;
    if (!grown) {
        return MHD_NO;
    }
    rq->headers = grown;
    line = malloc(kl + vl + 3);
    if (!line) {
        return MHD_NO;
    }
    memcpy(line, key, kl);
    memcpy(line + kl, ": ", 2);
    if (vl) {
        memcpy(line + kl + 2, value, vl);
    }
    line[kl + 2 + vl] = '\0';
    rq->headers[rq->header_count++] = line;
    return MHD_YES;
}

/* ---- matching ------------------------------------------------------------ */

static bool route_matches(const route *r, const am_fake_request *rq)
{
    const char *key;
    json_t *pattern;

    if (strcmp(r->method, rq->method) != 0 || !path_matches(r->path, rq->path)) {
        return false;
    }
    json_object_foreach(r->query, key, pattern) {
        char *v = form_get(rq->query, key);
        bool ok = value_matches(pattern, v);
        free(v);
        if (!ok) {
            return false;
        }
    }
    json_object_foreach(r->headers_required, key, pattern) {
        if (!value_matches(pattern, am_fake_request_header(rq, key))) {
            return false;
        }
    }
    json_object_foreach(r->body_required, key, pattern) {
        char *v = am_fake_request_param(rq, key, true);
        bool ok = value_matches(pattern, v);
        free(v);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* First route in file order not yet used (or repeating) that matches; NULL: none. */
static route *find_route(am_fake_crm *crm, const am_fake_request *rq)
{
    size_t i;

    for (i = 0; i < crm->route_count; i++) {
        route *r = &crm->routes[i];
        if ((r->uses == 0 || r->repeat) && route_matches(r, rq)) {
            return r;
        }
    }
    return NULL;
}

/* ---- the server ---------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    pending *p = calloc(1, sizeof(*p));

    (void)cls;
    (void)con;
    if (p) {
        p->uri = dup_s(uri);
    }
    return p;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    pending *p = *req_cls;

    (void)cls;
    (void)con;
    (void)toe;
    if (p) {
        free(p->uri);
        free(p->body);
        free(p);
        *req_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    am_fake_crm *crm = cls;

    (void)con;
    (void)socket_ctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&crm->lock);
        crm->connections++;
        pthread_mutex_unlock(&crm->lock);
    }
}

static enum MHD_Result answer(struct MHD_Connection *con, unsigned status, const char *body,
                              size_t len, const json_t *headers, const char *content_type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    const char *key;
    json_t *value;

    if (!resp) {
        return MHD_NO;
    }
    json_object_foreach((json_t *)headers, key, value) {
        /* libmicrohttpd computes the length itself. */
        if (json_is_string(value) && strcasecmp(key, "Content-Length") != 0) {
            MHD_add_response_header(resp, key, json_string_value(value));
        }
    }
    if (content_type) {
        MHD_add_response_header(resp, "Content-Type", content_type);
    }
    ret = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static am_fake_request *record(am_fake_crm *crm, struct MHD_Connection *con, const char *method,
                               pending *p)
{
    am_fake_request *rq = calloc(1, sizeof(*rq));
    const char *uri = p->uri ? p->uri : "";
    const char *q = strchr(uri, '?');

    if (!rq) {
        return NULL;
    }
    rq->method = dup_s(method);
    rq->path = q ? dup_n(uri, (size_t)(q - uri)) : dup_s(uri);
    rq->query = dup_s(q ? q + 1 : "");
    rq->body = p->body ? dup_n(p->body, p->body_len) : dup_s("");
    rq->body_len = p->body ? p->body_len : 0;
    rq->route = -1;
    MHD_get_connection_values(con, MHD_HEADER_KIND, collect_header, rq);
    if (!rq->method || !rq->path || !rq->query || !rq->body) {
        request_free(rq);
        return NULL;
    }
    pthread_mutex_lock(&crm->lock);
    if (crm->request_count == crm->request_cap) {
        size_t cap = crm->request_cap ? crm->request_cap * 2 : 16;
        am_fake_request **grown = realloc(crm->requests, cap * sizeof(*grown));
        if (!grown) {
            pthread_mutex_unlock(&crm->lock);
            request_free(rq);
            return NULL;
        }
        crm->requests = grown;
        crm->request_cap = cap;
    }
    crm->requests[crm->request_count++] = rq;
    pthread_mutex_unlock(&crm->lock);
    return rq;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    am_fake_crm *crm = cls;
    pending *p = *req_cls;
    am_fake_request *rq;
    route *r;
    char text[512];

    (void)url;
    (void)version;
    if (!p) {
        return MHD_NO;
    }
    /* libmicrohttpd calls once with the headers, then with each piece of the
     * body, then once more with nothing: answer only on that last call. */
    if (!p->started) {
        p->started = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (p->body_len + n > MAX_REQUEST_BODY) {
            n = MAX_REQUEST_BODY - p->body_len;
            p->truncated = true;
        }
        if (p->body_len + n + 1 > p->body_cap) {
            size_t cap = (p->body_len + n + 1) * 2;
            char *grown = realloc(p->body, cap);
            if (!grown) {
                return MHD_NO;
            }
            p->body = grown;
            p->body_cap = cap;
        }
        memcpy(p->body + p->body_len, upload_data, n);
        p->body_len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (p->answered) {
        return MHD_YES;
    }
    p->answered = true;
    rq = record(crm, con, method, p);
    if (!rq) {
        return MHD_NO;
    }
    if (crm->other) {
        rq->status = 418;
        return answer(con, 418, "other host: nothing should reach me\n", 36, NULL,
                      "text/plain");
    }
    pthread_mutex_lock(&crm->lock);
    r = find_route(crm, rq);
    if (r) {
        r->uses++;
        rq->route = (int)r->index;
        rq->status = r->status;
    } else {
        rq->status = 404;
    }
    pthread_mutex_unlock(&crm->lock);
    if (!r) {
        int n = snprintf(text, sizeof(text), "fake CRM: no route for %s %s\n", rq->method,
                         rq->path);
        return answer(con, 404, text, n > 0 ? (size_t)n : 0, NULL, "text/plain");
    }
    return answer(con, r->status, r->body, r->body ? r->body_len : 0, r->headers, NULL);
}

/* ---- loading a manifest -------------------------------------------------- */

static bool is_dir(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *am_fake_crm_fixtures_dir(void)
{
    static char dir[PATH_MAX];
    const char *env = getenv("AM_CRM_FIXTURES");
    char base[PATH_MAX - 32];
    ssize_t n;
    char *slash;

    if (env && *env) {
        snprintf(dir, sizeof(dir), "%s", env);
        return dir;
    }
    /* Tests and the bench run from the repository root, beside ../shared. */
    if (getcwd(base, sizeof(base))) {
        snprintf(dir, sizeof(dir), "%s/../shared/fixtures-crm", base);
        if (is_dir(dir)) {
            return dir;
        }
    }
    /* A test that changed directory: look beside each folder above the binary. */
    n = readlink("/proc/self/exe", base, sizeof(base) - 1);
    if (n > 0) {
        base[n] = '\0';
        while ((slash = strrchr(base, '/')) != NULL && slash != base) {
            *slash = '\0';
            snprintf(dir, sizeof(dir), "%s/../shared/fixtures-crm", base);
            if (is_dir(dir)) {
                return dir;
            }
        }
    }
    snprintf(dir, sizeof(dir), "../shared/fixtures-crm");
    return dir;
}

static char *read_whole(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        return NULL;
    }
    for (;;) {
        size_t n;
        if (cap - len < 4096) {
            char *grown;
            cap = cap ? cap * 2 : 65536;
            grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

/* True when c may continue a host or origin ("replace_origin" stops before none of these). */
static bool continues_origin(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == ':';
}

/* Replace `from` by `to` in body where `from` is not followed by [A-Za-z0-9.:-]. */
static char *replace_origin(const char *body, size_t len, const char *from, const char *to,
                            size_t *len_out)
{
    size_t fl = strlen(from), tl = strlen(to);
    size_t cap = len + 1, o = 0, i = 0;
    char *out = malloc(cap);

    if (!out) {
        return NULL;
    }
    while (i < len) {
        if (i + fl <= len && memcmp(body + i, from, fl) == 0 &&
            (i + fl == len || !continues_origin(body[i + fl]))) {
            if (o + tl + (len - i) + 1 > cap) {
                char *grown;
                cap = (o + tl + (len - i) + 1) * 2;
                grown = realloc(out, cap);
                if (!grown) {
                    free(out);
                    return NULL;
                }
                out = grown;
            }
            memcpy(out + o, to, tl);
            o += tl;
            i += fl;
        } else {
            if (o + 2 > cap) {
                char *grown;
                cap *= 2;
                grown = realloc(out, cap);
                if (!grown) {
                    free(out);
                    return NULL;
                }
                out = grown;
            }
            out[o++] = body[i++];
        }
    }
    out[o] = '\0';
    *len_out = o;
    return out;
}

static am_status load_routes(am_fake_crm *crm, const char *dir, const char *scenario,
                             am_error *err)
{
    char path[PATH_MAX];
    json_error_t jerr;
    json_t *entry;
    size_t i;

    snprintf(path, sizeof(path), "%s/routes.json", dir);
    crm->manifest = json_load_file(path, 0, &jerr);
    if (!crm->manifest) {
        return am_error_set(err, jerr.line < 0 || jerr.position == 0 ? AM_EIO : AM_EINPUT,
                            "%s: %s; check the fixtures (AM_CRM_FIXTURES)", path, jerr.text);
    }
    if (!json_is_array(crm->manifest)) {
        return am_error_set(err, AM_EINPUT, "%s: expected an array of routes", path);
    }
    crm->routes = calloc(json_array_size(crm->manifest) + 1, sizeof(route));
    if (!crm->routes) {
        return am_error_set(err, AM_ENOMEM, "fake CRM: out of memory");
    }
    json_array_foreach(crm->manifest, i, entry) {
        route *r = &crm->routes[crm->route_count];
        const char *sc = json_string_value(json_object_get(entry, "scenario"));
        json_t *body = json_object_get(entry, "body");
        json_t *repl = json_object_get(entry, "replace_origin");

        if (scenario && (!sc || strcmp(sc, scenario) != 0)) {
            continue;
        }
        r->index = i;
        r->method = json_string_value(json_object_get(entry, "method"));
        r->path = json_string_value(json_object_get(entry, "path"));
        r->status = (unsigned)json_integer_value(json_object_get(entry, "status"));
        if (!r->method || !r->path || r->status < 100 || r->status > 599) {
            return am_error_set(err, AM_EINPUT,
                                "%s: route %zu: method, path and status are required", path, i);
        }
        crm->route_count++; /* from here on, stop() frees what the route holds */
        r->query = json_object_get(entry, "query");
        r->headers_required = json_object_get(entry, "headers_required");
        r->body_required = json_object_get(entry, "body_required");
        r->headers = json_object_get(entry, "headers");
        r->optional = json_is_true(json_object_get(entry, "optional"));
        r->repeat = json_is_true(json_object_get(entry, "repeat"));
        if (json_is_string(body)) {
            char file[PATH_MAX];
            size_t len = 0;
            snprintf(file, sizeof(file), "%s/%s", dir, json_string_value(body));
            r->body = read_whole(file, &len);
            if (!r->body) {
                return am_error_set(err, AM_EIO, "%s: route %zu: cannot read body %s: %s", path,
                                    i, file, strerror(errno));
            }
            r->body_len = len;
            if (json_is_string(repl)) {
                size_t out_len = 0;
                char *replaced = replace_origin(r->body, r->body_len, json_string_value(repl),
                                                crm->origin, &out_len);
                if (!replaced) {
                    return am_error_set(err, AM_ENOMEM, "fake CRM: out of memory");
                }
                free(r->body);
                r->body = replaced;
                r->body_len = out_len;
            }
        }
    }
    if (crm->route_count == 0) {
        return am_error_set(err, AM_ENOTFOUND, "%s: no routes for scenario \"%s\"", path,
                            scenario ? scenario : "(any)");
    }
    return AM_OK;
}

static am_status listen_on_loopback(am_fake_crm *crm, am_error *err)
{
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    crm->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, crm,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        crm, MHD_OPTION_NOTIFY_COMPLETED, on_completed, crm, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, crm, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!crm->daemon) {
        return am_error_set(err, AM_ENET, "fake CRM: cannot listen on 127.0.0.1");
    }
    info = MHD_get_daemon_info(crm->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port) {
        return am_error_set(err, AM_ENET, "fake CRM: no port bound");
    }
    crm->port = info->port;
    snprintf(crm->origin, sizeof(crm->origin), "http://127.0.0.1:%u", crm->port);
    return AM_OK;
}

static am_status start(am_fake_crm **out, const char *dir, const char *scenario, bool other,
                       am_error *err)
{
    am_fake_crm *crm = calloc(1, sizeof(*crm));
    am_status rc;

    *out = NULL;
    if (!crm) {
        return am_error_set(err, AM_ENOMEM, "fake CRM: out of memory");
    }
    pthread_mutex_init(&crm->lock, NULL);
    crm->other = other;
    /* The routes need the origin (replace_origin), the server needs the routes:
     * listen first; nothing connects before this function returns. */
    rc = listen_on_loopback(crm, err);
    if (!rc && !other) {
        rc = load_routes(crm, dir, scenario, err);
    }
    if (rc) {
        am_fake_crm_stop(crm);
        return rc;
    }
    *out = crm;
    return AM_OK;
}

am_status am_fake_crm_start(am_fake_crm **out, const char *crm, const char *scenario,
                            am_error *err)
{
    char dir[PATH_MAX];

    snprintf(dir, sizeof(dir), "%s/%s", am_fake_crm_fixtures_dir(), crm);
    return start(out, dir, scenario, false, err);
}

am_status am_fake_crm_start_dir(am_fake_crm **out, const char *dir, const char *scenario,
                                am_error *err)
{
    return start(out, dir, scenario, false, err);
}

am_status am_fake_crm_start_other(am_fake_crm **out, am_error *err)
{
    return start(out, NULL, NULL, true, err);
}

const char *am_fake_crm_origin(const am_fake_crm *crm)
{
    return crm->origin;
}

unsigned am_fake_crm_port(const am_fake_crm *crm)
{
    return crm->port;
}

am_status am_fake_crm_map_host(am_fake_crm *crm, const char *host, unsigned port,
                               am_error *err)
{
    const char *old = getenv("AM_HTTP_CONNECT_TO");
    char value[2048];
    int n;

    if (old && *old) {
        n = snprintf(value, sizeof(value), "%s,%s:%u:127.0.0.1:%u", old, host, port, crm->port);
    } else {
        n = snprintf(value, sizeof(value), "%s:%u:127.0.0.1:%u", host, port, crm->port);
    }
    if (n < 0 || (size_t)n >= sizeof(value)) {
        return am_error_set(err, AM_ELIMIT, "fake CRM: too many mapped hosts");
    }
    if (setenv("AM_HTTP_CONNECT_TO", value, 1) != 0) {
        return am_error_set(err, AM_ENOMEM, "fake CRM: setenv: %s", strerror(errno));
    }
    return AM_OK;
}

void am_fake_crm_unmap_all(void)
{
    unsetenv("AM_HTTP_CONNECT_TO");
}

size_t am_fake_crm_request_count(const am_fake_crm *crm)
{
    size_t n;

    pthread_mutex_lock((pthread_mutex_t *)&crm->lock);
    n = crm->request_count;
    pthread_mutex_unlock((pthread_mutex_t *)&crm->lock);
    return n;
}

const am_fake_request *am_fake_crm_request(const am_fake_crm *crm, size_t i)
{
    const am_fake_request *rq = NULL;

    pthread_mutex_lock((pthread_mutex_t *)&crm->lock);
    if (i < crm->request_count) {
        rq = crm->requests[i];
    }
    pthread_mutex_unlock((pthread_mutex_t *)&crm->lock);
    return rq;
}

size_t am_fake_crm_connection_count(const am_fake_crm *crm)
{
    size_t n;

    pthread_mutex_lock((pthread_mutex_t *)&crm->lock);
    n = crm->connections;
    pthread_mutex_unlock((pthread_mutex_t *)&crm->lock);
    return n;
}

unsigned am_fake_crm_route_uses(const am_fake_crm *crm, size_t index)
{
    unsigned uses = 0;
    size_t i;

    pthread_mutex_lock((pthread_mutex_t *)&crm->lock);
    for (i = 0; i < crm->route_count; i++) {
        if (crm->routes[i].index == index) {
            uses = crm->routes[i].uses;
        }
    }
    pthread_mutex_unlock((pthread_mutex_t *)&crm->lock);
    return uses;
}

/* Append printf text to a malloc'd string. */
static void append(char **s, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void append(char **s, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *grown;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    grown = realloc(*s, *len + (size_t)n + 1);
    if (!grown) {
        return;
    }
    *s = grown;
    va_start(ap, fmt);
    vsnprintf(*s + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

char *am_fake_crm_check(am_fake_crm *crm)
{
    char *out = NULL;
    size_t len = 0, i;

    pthread_mutex_lock(&crm->lock);
    for (i = 0; i < crm->request_count; i++) {
        const am_fake_request *rq = crm->requests[i];
        if (rq->route < 0) {
            append(&out, &len, "unmatched request: %s %s%s%s\n", rq->method, rq->path,
                   rq->query[0] ? "?" : "", rq->query);
        }
    }
    for (i = 0; i < crm->route_count; i++) {
        const route *r = &crm->routes[i];
        if (!r->optional && !r->repeat && r->uses == 0) {
            append(&out, &len, "unused route %zu: %s %s (status %u)\n", r->index, r->method,
                   r->path, r->status);
        }
    }
    pthread_mutex_unlock(&crm->lock);
    return out;
}

void am_fake_crm_stop(am_fake_crm *crm)
{
    size_t i;

    if (!crm) {
        return;
    }
    if (crm->daemon) {
        MHD_stop_daemon(crm->daemon);
    }
    for (i = 0; i < crm->request_count; i++) {
        request_free(crm->requests[i]);
    }
    free(crm->requests);
    for (i = 0; i < crm->route_count; i++) {
        free(crm->routes[i].body);
    }
    free(crm->routes);
    json_decref(crm->manifest);
    pthread_mutex_destroy(&crm->lock);
    free(crm);
}
