/*
 * Test helpers: sandboxes of fixtures/, guarded buffers, and running the
 * built binary with captured output.
 */
#include "helpers.h"
#include "fake_crm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char sandbox_dir[PATH_MAX];
static char root_dir[PATH_MAX];

const char *am_test_root(void)
{
    if (!root_dir[0]) {
        if (!getcwd(root_dir, sizeof(root_dir))) {
            fail_msg("getcwd: %s", strerror(errno));
        }
    }
    return root_dir;
}

static int run_argv(const char *const *argv)
{
    pid_t pid;
    int status = 0;

    if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0) {
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *am_test_sandbox(void)
{
    char src[PATH_MAX + 16];

    am_test_sandbox_cleanup();
    snprintf(sandbox_dir, sizeof(sandbox_dir), "/tmp/acctmap-test-XXXXXX");
    if (!mkdtemp(sandbox_dir)) {
        fail_msg("mkdtemp: %s", strerror(errno));
    }
    snprintf(src, sizeof(src), "%s/fixtures/.", am_test_root());
    {
        const char *argv[] = {"cp", "-a", src, sandbox_dir, NULL};
        if (run_argv(argv) != 0) {
            fail_msg("cp fixtures into %s failed", sandbox_dir);
        }
    }
    {
        /* `make demo` leaves its store in fixtures/demo: tests start without it. */
        const char *argv[] = {"find",  sandbox_dir, "-depth", "-name", "acctmap-data",
                              "-type", "d",         "-exec",  "rm",    "-rf",
                              "{}",    ";",         NULL};
        if (run_argv(argv) != 0) {
            fail_msg("cleaning stores out of %s failed", sandbox_dir);
        }
    }
    return sandbox_dir;
}

void am_test_sandbox_cleanup(void)
{
    if (sandbox_dir[0]) {
        const char *argv[] = {"rm", "-rf", sandbox_dir, NULL};
        /* A test may have made a directory read-only to provoke an error. */
        const char *chmod_argv[] = {"chmod", "-R", "u+rwx", sandbox_dir, NULL};
        run_argv(chmod_argv);
        run_argv(argv);
        sandbox_dir[0] = '\0';
    }
}

int am_test_sandbox_setup(void **state)
{
    (void)state;
    am_test_sandbox();
    return 0;
}

int am_test_sandbox_teardown(void **state)
{
    (void)state;
    am_test_sandbox_cleanup();
    return 0;
}

const char *am_test_path(const char *rel)
{
    static char ring[8][PATH_MAX];
    static unsigned next;
    char *buf = ring[next++ % 8];
    int n = snprintf(buf, PATH_MAX, "%.*s/%s", PATH_MAX / 2, sandbox_dir, rel);

    if (n < 0 || n >= PATH_MAX) {
        fail_msg("path too long: %s", rel);
    }
    return buf;
}

/* Live guarded mappings, so free can find each one's base and size. */
static struct {
    const char *data;
    char *base;
    size_t size;
} guarded[16];

const char *am_test_guarded(const void *data, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    char *base =
        mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *start;
    size_t i;

    if (base == MAP_FAILED) {
        fail_msg("mmap: %s", strerror(errno));
    }
    if (mprotect(base + (pages - 1) * page, page, PROT_NONE) != 0) {
        fail_msg("mprotect: %s", strerror(errno));
    }
    start = base + (pages - 1) * page - len;
    if (len) {
        memcpy(start, data, len);
    }
    for (i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
        if (!guarded[i].base) {
            guarded[i].data = start;
            guarded[i].base = base;
            guarded[i].size = pages * page;
            return start;
        }
    }
    fail_msg("more than 16 guarded buffers at once");
    return NULL;
}

void am_test_guarded_free(const char *p)
{
    size_t i;

    for (i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
        if (guarded[i].base && guarded[i].data == p) {
            munmap(guarded[i].base, guarded[i].size);
            guarded[i].base = NULL;
            return;
        }
    }
}

char *am_test_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out) {
        *len_out = len;
    }
    return buf;
}

void am_test_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (!f) {
        fail_msg("open %s: %s", path, strerror(errno));
    }
    if (len && fwrite(data, 1, len, f) != len) {
        fail_msg("write %s: %s", path, strerror(errno));
    }
    fclose(f);
}

static char *slurp_fd(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap + 1);

    assert_non_null(buf);
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    return buf;
}

int am_test_run(am_test_output *out, const char *cwd, const char *const *args)
{
    char bin[PATH_MAX];
    const char *env_bin = getenv("AM_TEST_BIN");
    const char *argv[64];
    size_t argc = 0;
    char out_path[] = "/tmp/acctmap-out-XXXXXX";
    char err_path[] = "/tmp/acctmap-err-XXXXXX";
    int out_fd = mkstemp(out_path);
    int err_fd = mkstemp(err_path);
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0;
    char oldcwd[PATH_MAX];

    assert_true(out_fd >= 0 && err_fd >= 0);
    unlink(out_path);
    unlink(err_path);
    if (env_bin && env_bin[0] == '/') {
        snprintf(bin, sizeof(bin), "%s", env_bin);
    } else {
        snprintf(bin, sizeof(bin), "%s/%s", am_test_root(),
                 env_bin ? env_bin : "build/san/acctmap");
    }
    argv[argc++] = bin;
    while (args && *args && argc < 63) {
        argv[argc++] = *args++;
    }
    argv[argc] = NULL;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    /* posix_spawn has no chdir action in glibc 2.36's POSIX API: change ours around it. */
    assert_non_null(getcwd(oldcwd, sizeof(oldcwd)));
    if (cwd) {
        assert_int_equal(chdir(cwd), 0);
    }
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    assert_int_equal(chdir(oldcwd), 0);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fail_msg("spawn %s: %s", bin, strerror(rc));
    }
    assert_true(waitpid(pid, &status, 0) == pid);
    out->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    out->out = slurp_fd(out_fd);
    out->err = slurp_fd(err_fd);
    close(out_fd);
    close(err_fd);
    return out->exit_code;
}

void am_test_output_dispose(am_test_output *out)
{
    free(out->out);
    free(out->err);
    out->out = out->err = NULL;
}

size_t am_test_count_lines(const char *s)
{
    size_t n = 0;
    const char *p;

    for (p = s; *p; p++) {
        if (*p == '\n') {
            n++;
        }
    }
    if (p > s && p[-1] != '\n') {
        n++;
    }
    return n;
}

void am_test_progress_collect(void *ctx, const char *line, bool done)
{
    char **text = ctx;
    size_t have = *text ? strlen(*text) : 0, add = strlen(line) + (done ? 1 : 0);
    char *grown = realloc(*text, have + add + 2);

    assert_non_null(grown);
    /* Each line replaces the one before on a terminal: keep them one per line here. */
    snprintf(grown + have, add + 2, "%s\n", line);
    *text = grown;
}

void am_test_replace(char *out, size_t cap, const char *text, const char *token, const char *value)
{
    size_t n = 0, tlen = strlen(token), vlen = strlen(value);

    while (*text) {
        const char *at = strstr(text, token);
        size_t len = at ? (size_t)(at - text) : strlen(text);
        assert_true(n + len + (at ? vlen : 0) < cap);
        memcpy(out + n, text, len);
        n += len;
        text += len;
        if (at) {
            memcpy(out + n, value, vlen);
            n += vlen;
            text += tlen;
        }
    }
    out[n] = '\0';
}

/* ---- what a source gave ------------------------------------------------------ */

char *am_test_strdup(const char *s)
{
    char *copy = strdup(s);

    assert_non_null(copy);
    return copy;
}

void am_test_pull_keep_record(am_test_pull *r, const am_record *in, unsigned expect)
{
    am_test_record *out;

    if (expect & AM_TEST_NO_TAX_ID) {
        assert_string_equal(in->tax_id, "");
    }
    if (expect & AM_TEST_NO_PLACE) {
        assert_string_equal(in->country, "");
        assert_string_equal(in->city, "");
    }
    r->records = realloc(r->records, (r->count + 1) * sizeof(*r->records));
    assert_non_null(r->records);
    out = &r->records[r->count++];
    out->id = am_test_strdup(in->id);
    out->name = am_test_strdup(in->name);
    out->domain = am_test_strdup(in->domain);
    out->tax_id = am_test_strdup(in->tax_id);
    out->country = am_test_strdup(in->country);
    out->city = am_test_strdup(in->city);
    out->owner = am_test_strdup(in->owner);
    out->amount_cents = in->amount_cents;
    out->has_amount = in->has_amount;
    out->populations = in->populations;
}

void am_test_pull_keep_batch(am_test_pull *r, const am_record_batch *batch, unsigned expect)
{
    size_t i;

    for (i = 0; i < batch->count; i++) {
        am_test_pull_keep_record(r, &batch->records[i], expect);
    }
    r->rejects =
        realloc(r->rejects, (r->reject_count + batch->reject_count + 1) * sizeof(*r->rejects));
    assert_non_null(r->rejects);
    for (i = 0; i < batch->reject_count; i++) {
        r->rejects[r->reject_count++] = am_test_strdup(batch->rejects[i].msg);
    }
}

void am_test_pull_dispose(am_test_pull *r)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        am_test_record *t = &r->records[i];
        free(t->id);
        free(t->name);
        free(t->domain);
        free(t->tax_id);
        free(t->country);
        free(t->city);
        free(t->owner);
    }
    for (i = 0; i < r->reject_count; i++) {
        free(r->rejects[i]);
    }
    free(r->records);
    free(r->rejects);
    memset(r, 0, sizeof(*r));
}

const am_test_record *am_test_pull_find(const am_test_pull *r, const char *id)
{
    size_t i;

    for (i = 0; i < r->count; i++) {
        if (strcmp(r->records[i].id, id) == 0) {
            return &r->records[i];
        }
    }
    fail_msg("no record %s among %zu", id, r->count);
    return NULL;
}

am_config *am_test_partner_config(const char *type, const char *fields)
{
    am_config *cfg = NULL;
    am_error err;
    char json[4096];
    int n;

    am_error_clear(&err);
    n = snprintf(json, sizeof(json),
                 "{\"self\":\"acme\",\"store\":\"dir:./data\",\"orgs\":[{\"id\":\"acme\","
                 "\"sources\":[{\"type\":\"csv\",\"path\":\"acme.csv\"}]},{\"id\":\"globex\","
                 "\"sources\":[{\"type\":\"%s\"%s%s}]}]}",
                 type, fields[0] ? "," : "", fields);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    if (am_config_parse(&cfg, json, (size_t)n, "acctmap.json", ".", &err)) {
        fail_msg("config: %s", err.msg);
    }
    return cfg;
}

uint32_t am_test_pop_bit(const am_config *cfg, const char *org_id, const char *name)
{
    const am_config_org *org = am_config_org_find(cfg, org_id);
    size_t i;

    assert_non_null(org);
    for (i = 0; i < org->population_count; i++) {
        if (strcmp(org->populations[i], name) == 0) {
            return 1u << i;
        }
    }
    fail_msg("no population %s", name);
    return 0;
}

char *am_test_crm_fixture(const char *crm, const char *name, size_t *len)
{
    char path[1024];
    char *body;

    snprintf(path, sizeof(path), "%s/%s/%s", am_fake_crm_fixtures_dir(), crm, name);
    body = am_test_read_file(path, len);
    if (!body) {
        fail_msg("cannot read %s", path);
    }
    return body;
}
