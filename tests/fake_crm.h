/*
 * A fake CRM for tests and the bench: real HTTP (libmicrohttpd) on
 * 127.0.0.1 with an ephemeral port, replaying a replay manifest
 * (../shared/fixtures-crm/<crm>/routes.json) exactly per the rules of
 * ../shared/fixtures-crm/README.md, and recording every request.
 *
 *     am_fake_crm *crm = NULL;
 *     am_error err = {0};
 *     assert_int_equal(am_fake_crm_start(&crm, "hubspot", "happy", &err), AM_OK);
 *     ... point the connector's base_url at am_fake_crm_origin(crm) ...
 *     char *problems = am_fake_crm_check(crm);    // NULL: every route used, none unmatched
 *     assert_null(problems);
 *     am_fake_crm_stop(crm);
 *
 * A second kind of listener, the "other host" (am_fake_crm_start_other),
 * answers nothing useful and records every connection and request that
 * reaches it: map the public host names of the cross-host traps to it with
 * am_fake_crm_map_host (test builds of the client honour
 * AM_HTTP_CONNECT_TO, see connectors/http.h) and assert it saw nothing.
 *
 * Does not use cmocka (the bench links it too); errors come back as
 * am_status + am_error. Not thread-safe to start/stop from several threads;
 * the server's own thread and the test's thread share the records safely.
 */
#ifndef AM_FAKE_CRM_H
#define AM_FAKE_CRM_H

#include <stdbool.h>
#include <stddef.h>

#include "acctmap/error.h"

typedef struct am_fake_crm am_fake_crm;

/* One request as the server received it. */
typedef struct am_fake_request {
    char *method;
    char *path;        /* without the query string, as sent (not decoded) */
    char *query;       /* raw query string after '?', "" when none */
    char *body;        /* NUL-terminated, body_len bytes before the NUL */
    size_t body_len;
    char **headers;    /* "Name: value" lines as received */
    size_t header_count;
    int route;         /* index of the answering route in the manifest, -1: unmatched (404) */
    unsigned status;   /* status answered */
} am_fake_request;

/*
 * The folder holding the fixtures of all CRMs: $AM_CRM_FIXTURES if set,
 * else "<cwd>/../shared/fixtures-crm" when it exists (tests and the bench
 * run from the repository root), else the first "<folder>/../shared/
 * fixtures-crm" found going up from the running binary (a test that
 * changed directory). Static storage.
 */
const char *am_fake_crm_fixtures_dir(void);

/*
 * Start a server replaying the routes of `scenario` in
 * <fixtures>/<crm>/routes.json. AM_EIO / AM_EINPUT when the manifest
 * cannot be read or is malformed (naming the file), AM_ENOTFOUND when the
 * scenario has no routes, AM_ENET when the server cannot listen.
 * *out is the caller's, to am_fake_crm_stop.
 */
am_status am_fake_crm_start(am_fake_crm **out, const char *crm, const char *scenario,
                            am_error *err);

/*
 * The same with a manifest folder of the caller's (a generated routes.json
 * and its bodies, for tests of the client and the bench). `scenario` NULL:
 * every route of the file.
 */
am_status am_fake_crm_start_dir(am_fake_crm **out, const char *dir, const char *scenario,
                                am_error *err);

/*
 * Start an "other host" listener: every request gets 418 with a short text
 * body and is recorded; connections are counted even when no HTTP request
 * comes (a TLS handshake to a plain-HTTP port).
 */
am_status am_fake_crm_start_other(am_fake_crm **out, am_error *err);

/* "http://127.0.0.1:<port>", static per server, valid until stop. */
const char *am_fake_crm_origin(const am_fake_crm *crm);
unsigned am_fake_crm_port(const am_fake_crm *crm);

/*
 * Map `host`:`port` (e.g. "api.hubapi.com.mirror-cdn.example.net", 443) to
 * this listener for clients created from now on, by appending an entry to
 * the AM_HTTP_CONNECT_TO environment variable. am_fake_crm_unmap_all()
 * removes the variable (call it in teardown).
 */
am_status am_fake_crm_map_host(am_fake_crm *crm, const char *host, unsigned port,
                               am_error *err);
void am_fake_crm_unmap_all(void);

/* Recorded requests, in arrival order. Borrowed until the next request or stop. */
size_t am_fake_crm_request_count(const am_fake_crm *crm);
const am_fake_request *am_fake_crm_request(const am_fake_crm *crm, size_t i);
/* Connections accepted (other-host listener: the proof that nothing connected). */
size_t am_fake_crm_connection_count(const am_fake_crm *crm);

/* Value of a request header (case-insensitive name), borrowed; or NULL. */
const char *am_fake_request_header(const am_fake_request *rq, const char *name);

/*
 * Decoded value of a query parameter (or of a form / JSON body field when
 * `from_body`) of a recorded request; malloc'd, NULL when absent.
 */
char *am_fake_request_param(const am_fake_request *rq, const char *name, bool from_body);

/* How many times route `index` (manifest order) answered. */
unsigned am_fake_crm_route_uses(const am_fake_crm *crm, size_t index);

/*
 * NULL when every request matched a route and every route without
 * `optional` or `repeat` was used; otherwise a malloc'd description of the
 * unmatched requests and unused routes (free it).
 */
char *am_fake_crm_check(am_fake_crm *crm);

/* Stop the server and free everything. NULL is a no-op. */
void am_fake_crm_stop(am_fake_crm *crm);

#endif
