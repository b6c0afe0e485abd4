/*
 * usock4pl: the SWI-Prolog foreign part of the usock pack. A thin layer over libusock's C ABI:
 * a private directory is a blob whose release hook (atom garbage collection) and the at_halt
 * hook clean it up if the program did not, exactly once. Sockets are library(socket)'s, made in
 * Prolog; the library binds their descriptors (usock_bind_fd, usock_bind_path), and this file
 * adds the lifecycle calls (adopt, connect, sweep, hand-off, peers) over the library's.
 *
 * libusock itself stays free of SWI-Prolog symbols; only this glue links against both.
 */
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE /* st_mtimespec and st_ctimespec, also under _POSIX_C_SOURCE */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <SWI-Prolog.h>
#include <SWI-Stream.h>

#include "usock.h"

/* What a look at a directory remembers of it, to tell at the next look whether anything in it
 * was made, removed or replaced since: its inode and its times, in nanoseconds where the file
 * system keeps them (binding, unlinking or renaming a socket file changes the directory's mtime
 * and ctime; listen() and connections do not). */
typedef struct dir_stamp {
    dev_t dev;
    ino_t ino;
    struct timespec mtime, ctime;
} dir_stamp;

/* One private directory. `dir` becomes NULL when it has been cleaned up. `sockets` is set once a
 * socket path was handed out (usock_socket_path/3, usock_bind/3): a socket may then be open in
 * it, so when the blob is collected it becomes an orphan, which the registry owns and looks at
 * at this and later collections (`wait` more releases of a directory blob, then `interval`,
 * doubled each time a socket answers), until two looks confirm it idle (see look_at) or the
 * halt hook cleans up. */
typedef struct pl_usock {
    usock_dir *dir;
    int sockets;
    int orphan;                 /* registry_lock: its blob was collected */
    unsigned wait, interval;    /* registry_lock: for orphans */
    int idle_seen;              /* registry_lock: the last look found it idle, */
    long long idle_since;       /*   at this monotonic time (ns), */
    dir_stamp idle_stamp;       /*   the directory being then as stamped here */
    pthread_mutex_t lock;
    struct pl_usock *prev, *next; /* live handles, for usock_cleanup_all at halt */
    char *path; /* the directory's whole path (long_paths(true) allows more than sun_path) */
} pl_usock;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_usock *registry;
static int halting; /* set by the halt hook: no directory may be added after it ran */

/* Adds u to the registry; FALSE (nothing added) once the halt hook has begun. */
static int registry_add(pl_usock *u) {
    pthread_mutex_lock(&registry_lock);
    int ok = !halting;
    if (ok) {
        u->next = registry;
        u->prev = NULL;
        if (registry) registry->prev = u;
        registry = u;
    }
    pthread_mutex_unlock(&registry_lock);
    return ok;
}

/* Takes u out of the registry; the caller holds registry_lock. */
static void registry_unlink(pl_usock *u) {
    if (u->prev) u->prev->next = u->next; else if (registry == u) registry = u->next;
    if (u->next) u->next->prev = u->prev;
    u->prev = u->next = NULL;
}

static void registry_remove(pl_usock *u) {
    pthread_mutex_lock(&registry_lock);
    registry_unlink(u);
    pthread_mutex_unlock(&registry_lock);
}

/* Cleans up once; returns the usock status (USOCK_OK when already done). */
static int cleanup_once(pl_usock *u) {
    pthread_mutex_lock(&u->lock);
    usock_dir *dir = u->dir;
    u->dir = NULL;
    int rc = dir ? usock_cleanup(dir) : USOCK_OK;
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* The monotonic time between the first and the last of the looks that must all find a
 * directory idle, unchanged, before garbage collection removes it. A stream socket that is
 * bound but not yet listening refuses connections exactly as a closed one does: a server
 * between tcp_bind/2 and tcp_listen/2 must not lose its directory (its name, in a sticky parent
 * such as /tmp, would be free for another user to take). */
#define IDLE_CONFIRM_NS 1000000000LL

static long long monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

#ifdef __APPLE__ /* the nanosecond times' names there */
#define st_mtim st_mtimespec
#define st_ctim st_ctimespec
#endif

/* The stamp of the directory at path (lstat: the name itself); FALSE if it cannot be read. */
static int dir_stamp_of(const char *path, dir_stamp *out) {
    struct stat st;
    if (!path || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return FALSE;
    memset(out, 0, sizeof *out);
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->mtime = st.st_mtim;
    out->ctime = st.st_ctim;
    return TRUE;
}

static int same_stamp(const dir_stamp *a, const dir_stamp *b) {
    return a->dev == b->dev && a->ino == b->ino &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* What one look at an orphan found. */
typedef enum { LOOK_GONE, LOOK_IDLE, LOOK_SERVES } look_result;

/* Looks at u's directory once; the caller holds registry_lock. It is removed (LOOK_GONE) only
 * when this look and an earlier one at least IDLE_CONFIRM_NS before both found it idle
 * (usock_dir_idle: at least one socket, none answers, datagram included; probes do not wait)
 * and its stamp the same (no socket file made, removed or replaced in between, so the sockets
 * that refused then are the ones that refuse now, for at least that long). A first idle look,
 * or one that finds the directory changed, starts the interval (LOOK_IDLE); a socket that
 * answers, or a directory that cannot be examined, ends it (LOOK_SERVES). */
static look_result look_at(pl_usock *u) {
    pthread_mutex_lock(&u->lock);
    usock_dir *dir = u->dir;
    look_result r = LOOK_GONE;
    if (dir) {
        dir_stamp stamp; /* taken before the probes: a change during them shows at the next look */
        int idle = dir_stamp_of(usock_dir_path(dir), &stamp) && usock_dir_idle(dir) == USOCK_OK;
        long long now = monotonic_ns();
        if (!idle) {
            u->idle_seen = 0;
            r = LOOK_SERVES;
        } else if (u->idle_seen && same_stamp(&stamp, &u->idle_stamp) &&
                   now - u->idle_since >= IDLE_CONFIRM_NS) {
            u->dir = NULL;
            usock_cleanup(dir); /* errors ignored: nobody is left to tell */
        } else {
            if (!u->idle_seen || !same_stamp(&stamp, &u->idle_stamp)) {
                u->idle_seen = 1;
                u->idle_since = now;
                u->idle_stamp = stamp;
            }
            r = LOOK_IDLE;
        }
    }
    pthread_mutex_unlock(&u->lock);
    return r;
}

static void free_usock(pl_usock *u) {
    pthread_mutex_destroy(&u->lock);
    free(u->path);
    free(u);
}

/* The longest wait, in releases of directory blobs, between two looks at one orphan. */
#define ORPHAN_INTERVAL_MAX 64

/* Looks at orphan u (the caller holds registry_lock) and sets when to look again: removed and
 * freed if look_at confirms it idle; at the next release while it is idle but not yet
 * confirmed; else after twice as many releases as last time (at most ORPHAN_INTERVAL_MAX). */
static void look_at_orphan(pl_usock *u) {
    switch (look_at(u)) {
    case LOOK_GONE:
        registry_unlink(u);
        free_usock(u);
        break;
    case LOOK_IDLE:
        u->wait = 1;
        break;
    case LOOK_SERVES:
        if (u->interval < ORPHAN_INTERVAL_MAX) u->interval *= 2;
        u->wait = u->interval;
        break;
    }
}

/* One release of a directory blob: each orphan whose wait is over is looked at again. Nothing
 * after the halt hook began: it owns them. */
static void look_at_orphans(void) {
    pthread_mutex_lock(&registry_lock);
    pl_usock *u = halting ? NULL : registry;
    while (u) {
        pl_usock *next = u->next;
        if (u->orphan && --u->wait == 0) look_at_orphan(u);
        u = next;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* Atom garbage collection of a handle the program never cleaned up. Without sockets, clean up
 * now. With a socket path handed out, a socket may still be serving, or be bound and about to
 * listen (a blob is garbage as soon as no term refers to it, whatever became of its sockets):
 * the directory stays in the registry as an orphan, looked at now and at later collections, and
 * is removed once two looks at least a second apart found it idle and unchanged (look_at), or
 * at halt at the latest. A directory that handed out a path but has nothing in it stays too:
 * the path may still be bound (removing the directory would let another user take its name).
 *
 * This runs in the collector's thread: the probes do not wait, and nothing here calls into
 * Prolog (PL_blob_data only reads the blob). */
static int release_usock(atom_t a) {
    pl_usock *u = PL_blob_data(a, NULL, NULL);
    look_at_orphans();
    pthread_mutex_lock(&u->lock);
    int sockets = u->dir && u->sockets;
    pthread_mutex_unlock(&u->lock);
    if (sockets) {
        pthread_mutex_lock(&registry_lock);
        u->orphan = 1;
        u->interval = u->wait = 1;
        if (!halting) look_at_orphan(u); /* after halt began, the halt hook owns it */
        pthread_mutex_unlock(&registry_lock);
        return TRUE;
    }
    cleanup_once(u); /* errors ignored: nobody is left to tell */
    registry_remove(u);
    free_usock(u);
    return TRUE;
}

static int write_usock(IOSTREAM *s, atom_t a, int flags) {
    (void)flags;
    pl_usock *u = PL_blob_data(a, NULL, NULL);
    Sfprintf(s, "<usock_dir>(%s%s)", u->path, u->dir ? "" : ", cleaned up");
    return TRUE;
}

static PL_blob_t usock_blob = {
    .magic = PL_BLOB_MAGIC,
    .flags = PL_BLOB_NOCOPY | PL_BLOB_UNIQUE,
    .name = "usock_dir",
    .release = release_usock,
    .write = write_usock,
};

/* The Prolog name of a status: the header's name without USOCK_ERR_, in lower case
 * ("too_long"), as the library spells it (usock_status_name). */
static void status_atom_name(int status, char *out, size_t size) {
    const char *name = usock_status_name(status);
    const char *prefix = "USOCK_ERR_";
    if (!name) name = "unknown";
    else if (strncmp(name, prefix, strlen(prefix)) == 0) name += strlen(prefix);
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++)
        out[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    out[i] = '\0';
}

/* library(socket)'s code for a failure it reports as error(socket_error(Code, Message), _), so
 * that code written for tcp_bind/2 and tcp_connect/2 catches usock's too: a name in use, a
 * refused connection, and a bind that the system refused (ENOENT, EACCES). NULL otherwise. */
static const char *socket_error_code(int status, int err, const char *action) {
    if (status == USOCK_ERR_IN_USE) return "eaddrinuse";
    if (status != USOCK_ERR_SYSTEM) return NULL;
    if (err == ECONNREFUSED && strcmp(action, "connect") == 0) return "econnrefused";
    if (strcmp(action, "bind_path") != 0) return NULL;
    switch (err) {
    case ENOENT: return "enoent";
    case EACCES: return "eacces";
    case EPERM: return "eperm";
    default: return NULL;
    }
}

/* What library(socket)'s tcp_connect/2 raises when the path cannot be reached: nothing there is
 * existence_error(file, Path), no permission permission_error(read, file, Path). */
static int connect_formal(term_t formal, int err, const char *code, term_t path) {
    if (err == ENOENT)
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "existence_error", 2,
                             PL_CHARS, "file", PL_TERM, path);
    if (err == EACCES || err == EPERM)
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "permission_error", 3,
                             PL_CHARS, "read", PL_CHARS, "file", PL_TERM, path);
    return PL_unify_term(formal, PL_FUNCTOR_CHARS, "usock_error", 1, PL_CHARS, code);
}

/* The formal part of the error for a failed call: library(socket)'s term where it has one for
 * the same failure, else an ISO error term where one fits, usock_error(Code) where none does.
 * `action` is what the predicate was doing ("create", "bind", "bind_path", "connect",
 * "delete"), `object` what the path names when it is missing ("directory", "file"). */
static int unify_formal(term_t formal, int status, int err, const char *code, term_t path,
                        const char *action, const char *object) {
    const char *socket_code = socket_error_code(status, err, action);
    if (socket_code)
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "socket_error", 2,
                             PL_CHARS, socket_code, PL_CHARS, strerror(err ? err : EADDRINUSE));
    if (strcmp(action, "connect") == 0 && status == USOCK_ERR_SYSTEM)
        return connect_formal(formal, err, code, path);
    switch (status) {
    case USOCK_ERR_UNSAFE: /* not ours to use: someone else controls it */
        if (strcmp(action, "connect") == 0) /* the server is not who the client asked for */
            return PL_unify_term(formal, PL_FUNCTOR_CHARS, "permission_error", 3,
                                 PL_CHARS, "connect", PL_CHARS, object, PL_TERM, path);
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "permission_error", 3,
                             PL_CHARS, "use", PL_CHARS, "directory", PL_TERM, path);
    case USOCK_ERR_TOO_LONG:
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "representation_error", 1,
                             PL_CHARS, "unix_socket_path_length");
    case USOCK_ERR_EXHAUSTED:
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "resource_error", 1,
                             PL_CHARS, "random_directory_names");
    case USOCK_ERR_NO_DIR:
        return PL_unify_term(formal, PL_FUNCTOR_CHARS, "existence_error", 2,
                             PL_CHARS, "directory", PL_CHARS, "usock_parent");
    case USOCK_ERR_SYSTEM:
        if (err == ENOENT)
            return PL_unify_term(formal, PL_FUNCTOR_CHARS, "existence_error", 2,
                                 PL_CHARS, object, PL_TERM, path);
        if (err == EACCES || err == EPERM)
            return PL_unify_term(formal, PL_FUNCTOR_CHARS, "permission_error", 3,
                                 PL_CHARS, action, PL_CHARS, object, PL_TERM, path);
        break;
    default:
        break;
    }
    return PL_unify_term(formal, PL_FUNCTOR_CHARS, "usock_error", 1, PL_CHARS, code);
}

/* error(Formal, context(usock:Pred/Arity, usock(Code, Message, Errno))) for a failed usock call:
 * usock's code (invalid, too_long, unsafe, ... as usock_status_name spells it), its message,
 * which names the path and the reason, and the errno (0 for none) stay available to a handler;
 * prolog:message//1 below prints them. */
static int raise_usock(int status, const char *pred, int arity, const char *action,
                       const char *object) {
    char code[32];
    status_atom_name(status, code, sizeof code);
    const char *message = usock_last_error();
    int err = usock_last_errno();
    const char *path_text = usock_last_error_path();
    term_t ex = PL_new_term_ref(), formal = PL_new_term_ref(), path = PL_new_term_ref();
    if (!ex || !formal || !path) return FALSE;
    if (path_text[0]) {
        if (!PL_unify_chars(path, PL_ATOM | REP_MB, (size_t)-1, path_text)) return FALSE;
    } else if (!PL_unify_atom_chars(path, "")) {
        return FALSE;
    }
    if (!unify_formal(formal, status, err, code, path, action, object) ||
        !PL_unify_term(ex, PL_FUNCTOR_CHARS, "error", 2,
                       PL_TERM, formal,
                       PL_FUNCTOR_CHARS, "context", 2,
                         PL_FUNCTOR_CHARS, ":", 2,
                           PL_CHARS, "usock",
                           PL_FUNCTOR_CHARS, "/", 2, PL_CHARS, pred, PL_INT, arity,
                         PL_FUNCTOR_CHARS, "usock", 3,
                           PL_CHARS, code,
                           PL_UTF8_STRING, message,
                           PL_INT, err))
        return FALSE;
    return PL_raise_exception(ex);
}

static int get_usock(term_t t, pl_usock **u) {
    void *data;
    PL_blob_t *type;
    if (PL_get_blob(t, &data, NULL, &type) && type == &usock_blob) {
        *u = data;
        return TRUE;
    }
    return PL_type_error("usock_dir", t);
}

/* Text for a C string argument. C stops at the first NUL, so text that contains one would name
 * something else ('a\0b' would become "a"): refuse it as the invalid value it is. */
static int get_c_text(term_t t, char **text, const char *domain) {
    size_t len;
    if (!PL_get_nchars(t, &len, text, CVT_ATOM | CVT_STRING | REP_MB | CVT_EXCEPTION))
        return FALSE;
    if (strlen(*text) != len) return PL_domain_error(domain, t);
    return TRUE;
}

static int unify_new_dir(usock_dir *d, term_t dir, term_t culprit);

/* '$usock_create_dir'(+Parent, +Flags, -Dir): Parent is a file name or [] for the automatic
 * choice; Flags usock_create_dir's (USOCK_LONG_PATHS). */
static foreign_t pl_create_dir(term_t parent, term_t flags_t, term_t dir) {
    int flags;
    if (!PL_get_integer_ex(flags_t, &flags)) return FALSE;
    char *parent_path = NULL;
    if (!PL_get_nil(parent) &&
        (!get_c_text(parent, &parent_path, "directory") ||
         !PL_get_file_name(parent, &parent_path, PL_FILE_OSPATH)))
        return FALSE;
    usock_dir *d = NULL;
    int rc = usock_create_dir(parent_path, (uint32_t)flags, &d);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_create_dir", 2, "create", "directory");
    return unify_new_dir(d, dir, parent);
}

/* A blob for the new handle d, registered for halt, unified with dir. */
static int unify_new_dir(usock_dir *d, term_t dir, term_t culprit) {
    pl_usock *u = calloc(1, sizeof *u);
    char *path = strdup(usock_dir_path(d));
    if (!u || !path) {
        free(u);
        free(path);
        usock_cleanup(d);
        return PL_resource_error("memory");
    }
    u->dir = d;
    u->path = path;
    pthread_mutex_init(&u->lock, NULL);
    if (!registry_add(u)) { /* halt's cleanup already ran: nothing may be left behind */
        usock_cleanup(d);
        free_usock(u);
        return PL_permission_error("create", "usock_dir", culprit);
    }
    return PL_unify_blob(dir, u, sizeof *u, &usock_blob);
}

static int cleaned_error(term_t t) {
    return PL_existence_error("usock_dir", t);
}

/* '$usock_dir_path'(+Dir, -Path) */
static foreign_t pl_dir_path(term_t dir, term_t path) {
    pl_usock *u = NULL;
    if (!get_usock(dir, &u)) return FALSE;
    if (!u->dir) return cleaned_error(dir);
    return PL_unify_chars(path, PL_ATOM | REP_MB, (size_t)-1, u->path);
}

/* '$usock_socket_path'(+Dir, +Name, -Path): Name is text (checked in Prolog); Path an atom. */
static foreign_t pl_socket_path(term_t dir, term_t name, term_t path) {
    pl_usock *u = NULL;
    char *n;
    if (!get_usock(dir, &u)) return FALSE;
    if (!get_c_text(name, &n, "usock_socket_name")) return FALSE;
    char buf[4096]; /* a directory made with long_paths(true) may exceed USOCK_PATH_MAX */
    pthread_mutex_lock(&u->lock);
    int rc = u->dir ? usock_socket_path(u->dir, n, buf, sizeof buf) : 1;
    if (rc == USOCK_OK) u->sockets = 1;
    pthread_mutex_unlock(&u->lock);
    if (rc == 1) return cleaned_error(dir);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_socket_path", 3, "access", "file");
    return PL_unify_chars(path, PL_ATOM | REP_MB, (size_t)-1, buf);
}

/* '$usock_cleanup'(+Dir) */
static foreign_t pl_cleanup(term_t dir) {
    pl_usock *u = NULL;
    if (!get_usock(dir, &u)) return FALSE;
    int rc = cleanup_once(u);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_cleanup", 1, "delete", "directory");
    return TRUE;
}

/* '$usock_take_over'(+Path, +LockFd, -Dir): LockFd is -1 or an inherited descriptor. */
static foreign_t pl_take_over(term_t path, term_t lock_fd, term_t dir) {
    char *p;
    int fd;
    if (!get_c_text(path, &p, "directory") || !PL_get_file_name(path, &p, PL_FILE_OSPATH))
        return FALSE;
    if (!PL_get_integer_ex(lock_fd, &fd)) return FALSE;
    usock_dir *d = NULL;
    int rc = usock_take_over(p, fd, 0, &d);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_take_over", 3, "open", "directory");
    return unify_new_dir(d, dir, path);
}

/* '$usock_hand_off'(+Dir, -Fd) */
static foreign_t pl_hand_off(term_t dir, term_t fd) {
    pl_usock *u = NULL;
    if (!get_usock(dir, &u)) return FALSE;
    int out = -1;
    pthread_mutex_lock(&u->lock);
    int rc = u->dir ? usock_hand_off(u->dir, &out) : 1;
    if (rc == USOCK_OK) u->dir = NULL;
    pthread_mutex_unlock(&u->lock);
    if (rc == 1) return cleaned_error(dir);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_hand_off", 2, "access", "directory");
    return PL_unify_integer(fd, out);
}

/* '$usock_connect'(+Path, +Server, -In, -Out): a stream socket connected with usock_connect
 * (Server as usock_connect's), as a pair of Prolog streams on it (the output stream on a
 * duplicate of the descriptor, so that each stream closes its own). */
static foreign_t pl_connect(term_t path, term_t server, term_t in, term_t out) {
    char *p;
    int64_t who;
    if (!get_c_text(path, &p, "file") || !PL_get_file_name(path, &p, PL_FILE_OSPATH))
        return FALSE;
    if (!PL_get_int64_ex(server, &who)) return FALSE;
    int fd = -1;
    int rc = usock_connect(p, SOCK_STREAM, 0, who, &fd);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_connect", 3, "connect", "socket");
    int fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    IOSTREAM *r = fd2 >= 0 ? Sfdopen(fd, "r") : NULL;
    IOSTREAM *w = r ? Sfdopen(fd2, "w") : NULL;
    if (!w) {
        if (r) Sclose(r); else close(fd);
        if (fd2 >= 0) close(fd2);
        return PL_resource_error("file_descriptors");
    }
    return PL_unify_stream(in, r) && PL_unify_stream(out, w);
}

/* A socket bound at a well-known path. `bound` becomes NULL once unbound. Kept in a list until
 * halt, which unbinds what the program left (garbage collection of the blob does not: the socket
 * may still be serving). */
typedef struct pl_bound {
    usock_bound_path *bound;
    pthread_mutex_t lock;
    struct pl_bound *next;
    char path[USOCK_PATH_MAX + 1];
} pl_bound;

static pl_bound *bound_list;

static int unbind_once(pl_bound *b) {
    pthread_mutex_lock(&b->lock);
    usock_bound_path *bound = b->bound;
    b->bound = NULL;
    int rc = bound ? usock_unbind_path(bound) : USOCK_OK;
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static int write_bound(IOSTREAM *s, atom_t a, int flags) {
    (void)flags;
    pl_bound *b = PL_blob_data(a, NULL, NULL);
    Sfprintf(s, "<usock_bound_path>(%s%s)", b->path, b->bound ? "" : ", unbound");
    return TRUE;
}

static PL_blob_t bound_blob = {
    .magic = PL_BLOB_MAGIC,
    .flags = PL_BLOB_NOCOPY | PL_BLOB_UNIQUE,
    .name = "usock_bound_path",
    .write = write_bound,
};

/* '$usock_bind_path'(+Path, +Fd, +Backlog, +Replace, -Bound): Fd is the library(socket)
 * socket's descriptor (tcp_getopt/2 file_no); Replace is true or false. */
static foreign_t pl_bind_path(term_t path, term_t fd, term_t backlog, term_t replace,
                              term_t out) {
    char *p;
    int f, bl, rep;
    if (!get_c_text(path, &p, "file") || !PL_get_file_name(path, &p, PL_FILE_OSPATH))
        return FALSE;
    if (!PL_get_integer_ex(fd, &f) || !PL_get_integer_ex(backlog, &bl) ||
        !PL_get_bool_ex(replace, &rep))
        return FALSE;
    pl_bound *b = calloc(1, sizeof *b);
    if (!b) return PL_resource_error("memory");
    pthread_mutex_init(&b->lock, NULL);
    snprintf(b->path, sizeof b->path, "%s", p);
    int rc = usock_bind_path(p, f, bl, rep ? USOCK_REPLACE : 0, &b->bound);
    if (rc != USOCK_OK) {
        pthread_mutex_destroy(&b->lock);
        free(b);
        return raise_usock(rc, "usock_bind_path", 4, "bind_path", "file");
    }
    pthread_mutex_lock(&registry_lock);
    int late = halting;
    if (!late) {
        b->next = bound_list;
        bound_list = b;
    }
    pthread_mutex_unlock(&registry_lock);
    if (late) {
        unbind_once(b);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return PL_permission_error("bind", "usock_bound_path", path);
    }
    return PL_unify_blob(out, b, sizeof *b, &bound_blob);
}

/* '$usock_unbind_path'(+Bound) */
static foreign_t pl_unbind_path(term_t t) {
    void *data;
    PL_blob_t *type;
    if (!PL_get_blob(t, &data, NULL, &type) || type != &bound_blob)
        return PL_type_error("usock_bound_path", t);
    int rc = unbind_once(data);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_unbind_path", 1, "delete", "file");
    return TRUE;
}

/* The lists usock_sweep/3 builds while the library reports, in the calling thread. */
typedef struct {
    term_t removed, kept; /* open tails */
    int ok;
} sweep_lists;

static void on_swept(void *ctx, const char *path, int removed, const char *reason) {
    sweep_lists *l = ctx;
    if (!l->ok) return;
    term_t head = PL_new_term_ref(), p = PL_new_term_ref(), why = PL_new_term_ref();
    l->ok = head && p && why && PL_unify_chars(p, PL_ATOM | REP_MB, (size_t)-1, path);
    if (!l->ok) return;
    if (removed) {
        l->ok = PL_unify_list(l->removed, head, l->removed) && PL_unify(head, p);
    } else {
        l->ok = PL_unify_chars(why, PL_STRING | REP_UTF8, (size_t)-1, reason) &&
                PL_unify_list(l->kept, head, l->kept) &&
                PL_unify_term(head, PL_FUNCTOR_CHARS, "-", 2, PL_TERM, p, PL_TERM, why);
    }
}

/* '$usock_sweep'(+Parent, +Grace, -Removed, -Kept): Parent is [] for the automatic choice. */
static foreign_t pl_sweep(term_t parent, term_t grace, term_t removed, term_t kept) {
    char *parent_path = NULL;
    int64_t g;
    if (!PL_get_nil(parent) &&
        (!get_c_text(parent, &parent_path, "directory") ||
         !PL_get_file_name(parent, &parent_path, PL_FILE_OSPATH)))
        return FALSE;
    if (!PL_get_int64_ex(grace, &g)) return FALSE;
    sweep_lists l = {PL_copy_term_ref(removed), PL_copy_term_ref(kept), 1};
    int rc = usock_sweep(parent_path, g, 0, on_swept, &l, NULL);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_sweep", 3, "access", "directory");
    return l.ok && PL_unify_nil(l.removed) && PL_unify_nil(l.kept);
}

/* '$usock_create_shared_dir'(+Parent, +Gid, +Flags, -Dir) */
static foreign_t pl_create_shared_dir(term_t parent, term_t gid, term_t flags_t, term_t dir) {
    char *parent_path = NULL;
    int64_t g;
    int flags;
    if (!PL_get_integer_ex(flags_t, &flags)) return FALSE;
    if (!PL_get_nil(parent) &&
        (!get_c_text(parent, &parent_path, "directory") ||
         !PL_get_file_name(parent, &parent_path, PL_FILE_OSPATH)))
        return FALSE;
    if (!PL_get_int64_ex(gid, &g)) return FALSE;
    if (g < 0 || g > 0xfffffffe) return PL_domain_error("gid", gid);
    usock_dir *d = NULL;
    int rc = usock_create_shared_dir(parent_path, (uint32_t)g, (uint32_t)flags, &d);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_create_dir", 2, "create", "directory");
    return unify_new_dir(d, dir, parent);
}

static int unify_peer(term_t t, const usock_peer *p) {
    if (p->pid >= 0)
        return PL_unify_term(t, PL_FUNCTOR_CHARS, "peer", 3, PL_INT64, (int64_t)p->uid,
                             PL_INT64, (int64_t)p->gid, PL_INT, (int)p->pid);
    return PL_unify_term(t, PL_FUNCTOR_CHARS, "peer", 3, PL_INT64, (int64_t)p->uid,
                         PL_INT64, (int64_t)p->gid, PL_CHARS, "unknown");
}

/* '$usock_peer_of'(+Fd, -Peer) */
static foreign_t pl_peer_of(term_t fd, term_t peer) {
    int f;
    if (!PL_get_integer_ex(fd, &f)) return FALSE;
    usock_peer p;
    int rc = usock_peer_of(f, &p);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_peer", 2, "access", "socket");
    return unify_peer(peer, &p);
}

/* An accept policy, freed when its blob is garbage. */
static int release_policy(atom_t a) {
    usock_policy **p = PL_blob_data(a, NULL, NULL);
    usock_policy_free(*p);
    return TRUE;
}

/* The blob holds a copy of the pointer (no PL_BLOB_NOCOPY: the pointer itself lives on the
 * C stack of pl_policy_new). */
static PL_blob_t policy_blob = {
    .magic = PL_BLOB_MAGIC,
    .flags = PL_BLOB_UNIQUE,
    .name = "usock_policy",
    .release = release_policy,
};

static int get_policy(term_t t, usock_policy **out) {
    void *data;
    PL_blob_t *type;
    if (PL_get_blob(t, &data, NULL, &type) && type == &policy_blob) {
        *out = *(usock_policy **)data;
        return TRUE;
    }
    return PL_type_error("usock_policy", t);
}

/* '$usock_policy_new'(+Kind, +Ids, -Policy): Kind and Ids checked in Prolog. */
static foreign_t pl_policy_new(term_t kind, term_t ids, term_t out) {
    int k;
    if (!PL_get_integer_ex(kind, &k)) return FALSE;
    uint32_t buf[256];
    size_t n = 0;
    term_t head = PL_new_term_ref(), tail = PL_copy_term_ref(ids);
    while (PL_get_list(tail, head, tail)) {
        int64_t v;
        if (n == sizeof buf / sizeof buf[0]) return PL_resource_error("usock_policy_ids");
        if (!PL_get_int64_ex(head, &v)) return FALSE;
        if (v < 0 || v > 0xffffffff) return PL_domain_error("uid", head);
        buf[n++] = (uint32_t)v;
    }
    usock_policy *policy = NULL;
    int rc = usock_policy_new(k, buf, n, &policy);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_policy", 2, "create", "policy");
    return PL_unify_blob(out, &policy, sizeof policy, &policy_blob);
}

/* '$usock_policy_check'(+Policy, +Fd, -Peer): succeeds with the peer when admitted, fails when
 * refused (counted; the caller closes the connection). */
static foreign_t pl_policy_check(term_t policy, term_t fd, term_t peer) {
    usock_policy *p = NULL;
    int f;
    if (!get_policy(policy, &p) || !PL_get_integer_ex(fd, &f)) return FALSE;
    usock_peer who;
    int rc = usock_policy_check(p, f, &who);
    if (rc == USOCK_ERR_UNSAFE) return FALSE;
    if (rc != USOCK_OK) return raise_usock(rc, "usock_accept", 4, "accept", "socket");
    return unify_peer(peer, &who);
}

/* '$usock_policy_refused'(+Policy, -Count, -Last) */
static foreign_t pl_policy_refused(term_t policy, term_t count, term_t last) {
    usock_policy *p = NULL;
    if (!get_policy(policy, &p)) return FALSE;
    uint64_t c = 0;
    int64_t l = -1;
    usock_policy_refused(p, &c, &l);
    return PL_unify_int64(count, (int64_t)c) && PL_unify_int64(last, l);
}

/* '$usock_cleanup_all': at halt, clean every directory the program left. Other threads may
 * still run: from now on a new directory is cleaned up as soon as it is made (see
 * pl_create_dir), so none is left behind. */
static foreign_t pl_cleanup_all(void) {
    pthread_mutex_lock(&registry_lock);
    halting = 1;
    for (pl_usock *u = registry; u; u = u->next) cleanup_once(u);
    for (pl_bound *b = bound_list; b; b = b->next) unbind_once(b);
    pthread_mutex_unlock(&registry_lock);
    return TRUE;
}

/* '$usock_adopt'(+Dir, +Name): after the caller bound a socket at usock_socket_path(Dir, Name),
 * give the socket file mode 0600 whatever the umask and have cleanup remove it by identity. */
static foreign_t pl_adopt(term_t dir, term_t name) {
    pl_usock *u = NULL;
    char *n;
    if (!get_usock(dir, &u)) return FALSE;
    if (!get_c_text(name, &n, "usock_socket_name")) return FALSE;
    pthread_mutex_lock(&u->lock);
    int rc = u->dir ? usock_adopt(u->dir, n) : 1;
    if (rc == USOCK_OK) u->sockets = 1;
    pthread_mutex_unlock(&u->lock);
    if (rc == 1) return cleaned_error(dir);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_adopt", 2, "bind", "file");
    return TRUE;
}

/* '$usock_bind'(+Dir, +Name, +Fd, +Backlog, -Path): usock_bind_fd on the library(socket)
 * socket's descriptor (tcp_getopt/2 file_no), which stays the caller's, as Python's binding
 * does: bound at <Dir>/<Name> (through /proc/thread-self/fd for a long path), mode 0600,
 * listening with Backlog (0: SOMAXCONN). Path, a string, is the socket's real path. */
static foreign_t pl_bind(term_t dir, term_t name, term_t fd, term_t backlog, term_t path) {
    pl_usock *u = NULL;
    char *n;
    int f, bl;
    if (!get_usock(dir, &u)) return FALSE;
    if (!get_c_text(name, &n, "usock_socket_name")) return FALSE;
    if (!PL_get_integer_ex(fd, &f) || !PL_get_integer_ex(backlog, &bl)) return FALSE;
    char buf[4096]; /* a directory made with long_paths(true) may exceed USOCK_PATH_MAX */
    pthread_mutex_lock(&u->lock);
    int rc = u->dir ? usock_bind_fd(u->dir, n, f, bl) : 1;
    if (rc == USOCK_OK) {
        u->sockets = 1;
        rc = usock_socket_path(u->dir, n, buf, sizeof buf); /* fits: the bind checked it */
    }
    pthread_mutex_unlock(&u->lock);
    if (rc == 1) return cleaned_error(dir);
    if (rc != USOCK_OK) return raise_usock(rc, "usock_bind", 3, "bind", "file");
    return PL_unify_chars(path, PL_STRING | REP_MB, (size_t)-1, buf);
}

install_t install_usock4pl(void) {
    PL_register_foreign("$usock_create_dir", 3, pl_create_dir, 0);
    PL_register_foreign("$usock_dir_path", 2, pl_dir_path, 0);
    PL_register_foreign("$usock_socket_path", 3, pl_socket_path, 0);
    PL_register_foreign("$usock_cleanup", 1, pl_cleanup, 0);
    PL_register_foreign("$usock_cleanup_all", 0, pl_cleanup_all, 0);
    PL_register_foreign("$usock_adopt", 2, pl_adopt, 0);
    PL_register_foreign("$usock_bind", 5, pl_bind, 0);
    PL_register_foreign("$usock_take_over", 3, pl_take_over, 0);
    PL_register_foreign("$usock_hand_off", 2, pl_hand_off, 0);
    PL_register_foreign("$usock_connect", 4, pl_connect, 0);
    PL_register_foreign("$usock_create_shared_dir", 4, pl_create_shared_dir, 0);
    PL_register_foreign("$usock_peer_of", 2, pl_peer_of, 0);
    PL_register_foreign("$usock_policy_new", 3, pl_policy_new, 0);
    PL_register_foreign("$usock_policy_check", 3, pl_policy_check, 0);
    PL_register_foreign("$usock_policy_refused", 3, pl_policy_refused, 0);
    PL_register_foreign("$usock_bind_path", 5, pl_bind_path, 0);
    PL_register_foreign("$usock_unbind_path", 1, pl_unbind_path, 0);
    PL_register_foreign("$usock_sweep", 4, pl_sweep, 0);
}
