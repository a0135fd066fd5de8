/*
 * Directory store (`dir:PATH`), the embedded default. Layout:
 *   PATH/FORMAT            "acctmap-store 1"
 *   PATH/lock              flock()ed by the one run writing
 *   PATH/.tmp/<pid>-<n>/   a run being written, invisible to readers
 *   PATH/runs/<id>/        committed runs, never rewritten
 *   PATH/secrets/<name>    kept between runs (rotated refresh tokens), mode 0600
 * A run's files are fsynced, then its directory is renamed into runs/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_backend.h"

#define FORMAT_LINE "acctmap-store 1\n"
#define MAX_OPEN_PARTS 16
#define PART_READ_MAX ((size_t)64 << 30)

typedef struct dir_store {
    char root[PATH_MAX];
    char display[PATH_MAX + 8]; /* "dir:PATH" as written, for messages */
} dir_store;

typedef struct open_part {
    char name[64];
    int fd;
} open_part;

typedef struct dir_txn {
    dir_store *st;
    int lock_fd;
    char tmp[PATH_MAX];
    open_part parts[MAX_OPEN_PARTS];
    size_t part_count;
} dir_txn;

static am_status io_error(am_error *err, const dir_store *st, const char *what, const char *path)
{
    return am_error_set(err, AM_EIO, "%s: cannot %s %s: %s; check the store path and its "
                        "permissions", st->display, what, path, strerror(errno));
}

static am_status join_path(char *out, size_t cap, am_error *err, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);

    if (n < 0 || (size_t)n >= cap) {
        return am_error_set(err, AM_ELIMIT, "path too long: %s/%s", a, b);
    }
    return AM_OK;
}

static am_status dir_open(void **state_out, const char *location, const char *base_dir,
                          const char *schema, am_error *err)
{
    dir_store *st;
    int n;

    (void)schema; /* a directory is its own namespace */
    *state_out = NULL;
    st = calloc(1, sizeof(*st));
    if (!st) {
        return am_error_set(err, AM_ENOMEM, "out of memory opening the store");
    }
    if (location[0] == '/' || !base_dir || !base_dir[0] || strcmp(base_dir, ".") == 0) {
        n = snprintf(st->root, sizeof(st->root), "%s", location);
    } else {
        n = snprintf(st->root, sizeof(st->root), "%s/%s", base_dir, location);
    }
    snprintf(st->display, sizeof(st->display), "dir:%s", location);
    if (n < 0 || (size_t)n >= sizeof(st->root)) {
        free(st);
        return am_error_set(err, AM_ECONFIG, "store dir:%.64s...: path too long", location);
    }
    *state_out = st;
    return AM_OK;
}

static void dir_close(void *state)
{
    free(state);
}

static am_status make_dir(const dir_store *st, const char *path, am_error *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return io_error(err, st, "create directory", path);
    }
    return AM_OK;
}

static am_status fsync_path(const dir_store *st, const char *path, am_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return io_error(err, st, "open", path);
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        close(fd);
        return io_error(err, st, "sync", path);
    }
    close(fd);
    return AM_OK;
}

static am_status dir_init(void *state, am_error *err)
{
    dir_store *st = state;
    char path[PATH_MAX];
    char tmp[PATH_MAX + 16];
    am_status rc;
    FILE *f;

    rc = make_dir(st, st->root, err);
    if (rc) {
        return rc;
    }
    rc = join_path(path, sizeof(path), err, st->root, "runs");
    if (!rc) {
        rc = make_dir(st, path, err);
    }
    if (!rc) {
        rc = join_path(path, sizeof(path), err, st->root, ".tmp");
    }
    if (!rc) {
        rc = make_dir(st, path, err);
    }
    if (!rc) {
        rc = join_path(path, sizeof(path), err, st->root, "FORMAT");
    }
    if (rc) {
        return rc;
    }
    f = fopen(path, "r");
    if (f) {
        char line[64] = "";
        if (!fgets(line, sizeof(line), f)) {
            line[0] = '\0';
        }
        fclose(f);
        if (strcmp(line, FORMAT_LINE) != 0) {
            return am_error_set(err, AM_ESTORE,
                                "%s: FORMAT says \"%.40s\", not this version's \"%.*s\"; "
                                "use a newer acctmap or another store path",
                                st->display, line, (int)strlen(FORMAT_LINE) - 1, FORMAT_LINE);
        }
        return AM_OK;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        return io_error(err, st, "write", tmp);
    }
    fputs(FORMAT_LINE, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return io_error(err, st, "write", tmp);
    }
    fclose(f);
    if (rename(tmp, path) != 0) {
        return io_error(err, st, "rename", tmp);
    }
    return fsync_path(st, st->root, err);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static am_status dir_run_ids(char ***ids_out, size_t *count_out, void *state, am_error *err)
{
    dir_store *st = state;
    char path[PATH_MAX];
    char **ids = NULL;
    size_t count = 0, cap = 0;
    DIR *d;
    struct dirent *e;
    am_status rc;

    *ids_out = NULL;
    *count_out = 0;
    rc = join_path(path, sizeof(path), err, st->root, "runs");
    if (rc) {
        return rc;
    }
    d = opendir(path);
    if (!d) {
        if (errno == ENOENT) {
            return AM_OK; /* no run yet */
        }
        return io_error(err, st, "read", path);
    }
    while ((e = readdir(d)) != NULL) {
        if (!am_store__valid_run_id(e->d_name)) {
            continue;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(ids, ncap * sizeof(*grown));
            if (!grown) {
                rc = am_error_set(err, AM_ENOMEM, "out of memory listing runs");
                goto fail;
            }
            ids = grown;
            cap = ncap;
        }
        ids[count] = strdup(e->d_name);
        if (!ids[count]) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory listing runs");
            goto fail;
        }
        count++;
    }
    closedir(d);
    /* Ids are UTC timestamps: name order is time order. */
    if (count > 1) { /* qsort(NULL, 0) is undefined */
        qsort(ids, count, sizeof(*ids), compare_strings);
    }
    *ids_out = ids;
    *count_out = count;
    return AM_OK;
fail:
    closedir(d);
    am_store_run_ids_free(ids, count);
    return rc;
}

/* The whole file at `path`, NUL-terminated; AM_ENOTFOUND when it does not exist. */
static am_status read_file(char **data_out, size_t *len_out, const dir_store *st,
                           const char *path, am_error *err)
{
    struct stat sb;
    char *data = NULL;
    size_t got = 0;
    int fd;

    *data_out = NULL;
    *len_out = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return am_error_set(err, AM_ENOTFOUND, "%s: %s does not exist", st->display, path);
        }
        return io_error(err, st, "open", path);
    }
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return io_error(err, st, "read", path);
    }
    if ((size_t)sb.st_size > PART_READ_MAX) {
        close(fd);
        return am_error_set(err, AM_ELIMIT, "%s: %s is larger than 64 GiB", st->display, path);
    }
    data = malloc((size_t)sb.st_size + 1);
    if (!data) {
        close(fd);
        return am_error_set(err, AM_ENOMEM, "out of memory reading %s", path);
    }
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, data + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            free(data);
            close(fd);
            return io_error(err, st, "read", path);
        }
        got += (size_t)r;
    }
    close(fd);
    data[got] = '\0';
    *data_out = data;
    *len_out = got;
    return AM_OK;
}

/* 0, or -1 with errno set. */
static int write_all(int fd, const void *data, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

static am_status dir_part_read(char **data_out, size_t *len_out, void *state, const char *run_id,
                               const char *part, am_error *err)
{
    dir_store *st = state;
    char path[PATH_MAX];
    int n;
    am_status rc;

    *data_out = NULL;
    *len_out = 0;
    n = snprintf(path, sizeof(path), "%s/runs/%s/%s", st->root, run_id, part);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return am_error_set(err, AM_ELIMIT, "%s: path too long", st->display);
    }
    rc = read_file(data_out, len_out, st, path, err);
    if (rc == AM_ENOTFOUND) {
        return am_error_set(err, AM_ENOTFOUND, "%s: run %s has no %s", st->display, run_id,
                            part);
    }
    return rc;
}

/* Remove a directory tree of plain files (a temporary run: one level deep). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d) {
        while ((e = readdir(d)) != NULL) {
            char child[PATH_MAX];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) < (int)sizeof(child)) {
                unlink(child);
            }
        }
        closedir(d);
    }
    rmdir(path);
}

/* With the lock held, anything left in .tmp is from a run that died: drop it. */
static void remove_stale_runs(const dir_store *st)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *e;

    if (snprintf(path, sizeof(path), "%s/.tmp", st->root) >= (int)sizeof(path)) {
        return;
    }
    d = opendir(path);
    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char child[PATH_MAX];
        if (e->d_name[0] == '.') {
            continue;
        }
        if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) < (int)sizeof(child)) {
            remove_tree(child);
        }
    }
    closedir(d);
}

static am_status dir_begin(void **txn_out, void *state, am_error *err)
{
    dir_store *st = state;
    dir_txn *txn = NULL;
    char path[PATH_MAX];
    am_status rc;
    struct timespec ts;

    *txn_out = NULL;
    rc = dir_init(st, err);
    if (rc) {
        return rc;
    }
    txn = calloc(1, sizeof(*txn));
    if (!txn) {
        return am_error_set(err, AM_ENOMEM, "out of memory starting a run");
    }
    txn->st = st;
    txn->lock_fd = -1;
    rc = join_path(path, sizeof(path), err, st->root, "lock");
    if (rc) {
        goto fail;
    }
    txn->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (txn->lock_fd < 0) {
        rc = io_error(err, st, "open", path);
        goto fail;
    }
    if (flock(txn->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? am_error_set(err, AM_ESTORE, "%s: another acctmap run is writing to this "
                                "store; wait for it to finish", st->display)
                 : io_error(err, st, "lock", path);
        goto fail;
    }
    remove_stale_runs(st);
    clock_gettime(CLOCK_REALTIME, &ts);
    if (snprintf(txn->tmp, sizeof(txn->tmp), "%s/.tmp/%ld-%ld", st->root, (long)getpid(),
                 (long)ts.tv_nsec) >= (int)sizeof(txn->tmp)) {
        rc = am_error_set(err, AM_ELIMIT, "%s: path too long", st->display);
        goto fail;
    }
    if (mkdir(txn->tmp, 0755) != 0) {
        rc = io_error(err, st, "create directory", txn->tmp);
        txn->tmp[0] = '\0';
        goto fail;
    }
    *txn_out = txn;
    return AM_OK;
fail:
    if (txn->lock_fd >= 0) {
        close(txn->lock_fd);
    }
    free(txn);
    return rc;
}

static am_status dir_part_append(void *vtxn, const char *part, const void *data, size_t len,
                                 am_error *err)
{
    dir_txn *txn = vtxn;
    open_part *p = NULL;
    size_t i;

    for (i = 0; i < txn->part_count; i++) {
        if (strcmp(txn->parts[i].name, part) == 0) {
            p = &txn->parts[i];
            break;
        }
    }
    if (!p) {
        char path[PATH_MAX];
        am_status rc;
        if (txn->part_count == MAX_OPEN_PARTS) {
            /* Flush the least recent into the file system; reopen later in append mode. */
            if (fsync(txn->parts[0].fd) != 0) {
                return io_error(err, txn->st, "sync", txn->parts[0].name);
            }
            close(txn->parts[0].fd);
            memmove(&txn->parts[0], &txn->parts[1], (MAX_OPEN_PARTS - 1) * sizeof(open_part));
            txn->part_count--;
        }
        rc = join_path(path, sizeof(path), err, txn->tmp, part);
        if (rc) {
            return rc;
        }
        p = &txn->parts[txn->part_count];
        snprintf(p->name, sizeof(p->name), "%s", part);
        p->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (p->fd < 0) {
            return io_error(err, txn->st, "write", path);
        }
        txn->part_count++;
    }
    if (write_all(p->fd, data, len) != 0) {
        return io_error(err, txn->st, "write", part);
    }
    return AM_OK;
}

static am_status dir_part_read_pending(char **data_out, size_t *len_out, void *vtxn,
                                       const char *part, am_error *err)
{
    dir_txn *txn = vtxn;
    char path[PATH_MAX];
    am_status rc = join_path(path, sizeof(path), err, txn->tmp, part);

    /* Appends are write(2)s on the part's file: it holds every byte already. */
    return rc ? rc : read_file(data_out, len_out, txn->st, path, err);
}

static void txn_free(dir_txn *txn, bool remove)
{
    size_t i;

    for (i = 0; i < txn->part_count; i++) {
        close(txn->parts[i].fd);
    }
    if (remove && txn->tmp[0]) {
        remove_tree(txn->tmp);
    }
    if (txn->lock_fd >= 0) {
        close(txn->lock_fd); /* releases the flock */
    }
    free(txn);
}

static am_status dir_commit(char id_out[AM_RUN_ID_MAX], void *vtxn, const char *base_id,
                            am_error *err)
{
    dir_txn *txn = vtxn;
    dir_store *st = txn->st;
    char runs[PATH_MAX], dest[PATH_MAX], id[AM_RUN_ID_MAX];
    am_status rc = AM_OK;
    size_t i;
    int attempt;

    for (i = 0; i < txn->part_count; i++) {
        if (fsync(txn->parts[i].fd) != 0) {
            rc = io_error(err, st, "sync", txn->parts[i].name);
            goto cleanup;
        }
    }
    rc = fsync_path(st, txn->tmp, err);
    if (rc) {
        goto cleanup;
    }
    rc = join_path(runs, sizeof(runs), err, st->root, "runs");
    if (rc) {
        goto cleanup;
    }
    for (attempt = 1; attempt < 100; attempt++) {
        if (attempt == 1) {
            snprintf(id, sizeof(id), "%s", base_id);
        } else {
            snprintf(id, sizeof(id), "%.24s.%d", base_id, attempt);
        }
        rc = join_path(dest, sizeof(dest), err, runs, id);
        if (rc) {
            goto cleanup;
        }
        /* rename() refuses to replace a non-empty directory: a taken id is never overwritten. */
        if (rename(txn->tmp, dest) == 0) {
            break;
        }
        if (errno != EEXIST && errno != ENOTEMPTY) {
            rc = io_error(err, st, "publish the run as", dest);
            goto cleanup;
        }
    }
    if (attempt == 100) {
        rc = am_error_set(err, AM_ESTORE, "%s: too many runs named %s", st->display, base_id);
        goto cleanup;
    }
    txn->tmp[0] = '\0';
    rc = fsync_path(st, runs, err);
    memcpy(id_out, id, AM_RUN_ID_MAX);
cleanup:
    txn_free(txn, true);
    return rc;
}

static void dir_abort(void *vtxn)
{
    if (vtxn) {
        txn_free(vtxn, true);
    }
}

/* ---- secrets ---------------------------------------------------------------- */

static am_status dir_secret_load(char **value_out, void *state, const char *name, am_error *err)
{
    dir_store *st = state;
    char dir[PATH_MAX], path[PATH_MAX];
    size_t len;
    am_status rc;

    rc = join_path(dir, sizeof(dir), err, st->root, "secrets");
    if (!rc) {
        rc = join_path(path, sizeof(path), err, dir, name);
    }
    if (!rc) {
        rc = read_file(value_out, &len, st, path, err);
    }
    if (!rc && memchr(*value_out, '\0', len)) {
        free(*value_out);
        *value_out = NULL;
        rc = am_error_set(err, AM_ESTORE, "%s: secrets/%s is damaged; remove it and "
                          "authorise the source again", st->display, name);
    }
    return rc;
}

static am_status dir_secret_save(void *state, const char *name, const char *value, am_error *err)
{
    static unsigned long serial;
    dir_store *st = state;
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 64];
    size_t len = strlen(value);
    unsigned long n = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
    int fd;
    am_status rc;

    rc = make_dir(st, st->root, err);
    if (!rc) {
        rc = join_path(dir, sizeof(dir), err, st->root, "secrets");
    }
    if (!rc && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = io_error(err, st, "create directory", dir);
    }
    if (!rc) {
        rc = join_path(path, sizeof(path), err, dir, name);
    }
    if (rc) {
        return rc;
    }
    snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.%lu", dir, name, (long)getpid(), n);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return io_error(err, st, "write", tmp);
    }
    if (write_all(fd, value, len) != 0 || fsync(fd) != 0) {
        rc = io_error(err, st, "write", tmp);
        close(fd);
        unlink(tmp);
        return rc;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        rc = io_error(err, st, "rename", tmp);
        unlink(tmp);
        return rc;
    }
    return fsync_path(st, dir, err);
}

const am_store_ops am_store_dir_ops = {
    .scheme = "dir:",
    .open = dir_open,
    .close = dir_close,
    .init = dir_init,
    .run_ids = dir_run_ids,
    .part_read = dir_part_read,
    .begin = dir_begin,
    .part_append = dir_part_append,
    .commit = dir_commit,
    .abort = dir_abort,
    .part_read_pending = dir_part_read_pending,
    .secret_load = dir_secret_load,
    .secret_save = dir_secret_save,
};
