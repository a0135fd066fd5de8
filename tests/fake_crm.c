/*
 * Fake CRM server for tests and the bench (see fake_crm.h).
 * FIRST COMMIT: stub bodies so that tests can compile against fake_crm.h;
 * the implementation follows on this branch.
 */
#include "fake_crm.h"

#include <stdlib.h>

const char *am_fake_crm_fixtures_dir(void)
{
    return "../shared/fixtures-crm";
}

am_status am_fake_crm_start(am_fake_crm **out, const char *crm, const char *scenario,
                            am_error *err)
{
    (void)crm;
    (void)scenario;
    *out = NULL;
    return am_error_set(err, AM_EINTERNAL, "fake_crm: not implemented yet");
}

am_status am_fake_crm_start_dir(am_fake_crm **out, const char *dir, const char *scenario,
                                am_error *err)
{
    (void)dir;
    (void)scenario;
    *out = NULL;
    return am_error_set(err, AM_EINTERNAL, "fake_crm: not implemented yet");
}

am_status am_fake_crm_start_other(am_fake_crm **out, am_error *err)
{
    *out = NULL;
    return am_error_set(err, AM_EINTERNAL, "fake_crm: not implemented yet");
}

const char *am_fake_crm_origin(const am_fake_crm *crm)
{
    (void)crm;
    return "";
}

unsigned am_fake_crm_port(const am_fake_crm *crm)
{
    (void)crm;
    return 0;
}

am_status am_fake_crm_map_host(am_fake_crm *crm, const char *host, unsigned port,
                               am_error *err)
{
    (void)crm;
    (void)host;
    (void)port;
    return am_error_set(err, AM_EINTERNAL, "fake_crm: not implemented yet");
}

void am_fake_crm_unmap_all(void)
{
}

size_t am_fake_crm_request_count(const am_fake_crm *crm)
{
    (void)crm;
    return 0;
}

const am_fake_request *am_fake_crm_request(const am_fake_crm *crm, size_t i)
{
    (void)crm;
    (void)i;
    return NULL;
}

size_t am_fake_crm_connection_count(const am_fake_crm *crm)
{
    (void)crm;
    return 0;
}

const char *am_fake_request_header(const am_fake_request *rq, const char *name)
{
    (void)rq;
    (void)name;
    return NULL;
}

char *am_fake_request_param(const am_fake_request *rq, const char *name, bool from_body)
{
    (void)rq;
    (void)name;
    (void)from_body;
    return NULL;
}

unsigned am_fake_crm_route_uses(const am_fake_crm *crm, size_t index)
{
    (void)crm;
    (void)index;
    return 0;
}

char *am_fake_crm_check(am_fake_crm *crm)
{
    (void)crm;
    return NULL;
}

void am_fake_crm_stop(am_fake_crm *crm)
{
    (void)crm;
}
