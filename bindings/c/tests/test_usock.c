/*
 * C tests of the usock ABI, compiled with -Wall -Wextra -Wpedantic -Werror -std=c11 and run
 * under AddressSanitizer and UndefinedBehaviorSanitizer (see the Makefile). Each test checks
 * what a C caller sees: status codes, messages, out-parameters, mode bits, connections, files
 * left behind. Ends with "N passed, N failed".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "usock.h"

static int passed, failed, current_failed;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed; last error: %s\n", __FILE__,      \
                    __LINE__, #cond, usock_last_error());                                 \
            current_failed = 1;                                                           \
        }                                                                                 \
    } while (0)

#define RUN(test)                                                                         \
    do {                                                                                  \
        current_failed = 0;                                                               \
        test();                                                                           \
        printf("%s %s\n", current_failed ? "FAIL" : "ok  ", #test);                       \
        if (current_failed) failed++; else passed++;                                      \
    } while (0)

static char scratch[64];

static unsigned mode_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0xFFFF;
    return (unsigned)(st.st_mode & 07777);
}

static int count_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static int connect_to(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_version(void) {
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", USOCK_VERSION_MAJOR, USOCK_VERSION_MINOR,
             USOCK_VERSION_PATCH);
    CHECK(strcmp(usock_version(), expect) == 0);
    CHECK(USOCK_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path));
}

/* The header's USOCK_PATH_MAX is this platform's sun_path, and the library agrees. */
_Static_assert(USOCK_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
               "USOCK_PATH_MAX is sizeof(sun_path)");
static void test_path_max(void) {
    CHECK(usock_path_max() == USOCK_PATH_MAX);
}

static void test_strerror_never_null(void) {
    for (int code = -20; code <= 5; code++) {
        const char *s = usock_strerror(code);
        CHECK(s != NULL && s[0] != '\0');
    }
    CHECK(strcmp(usock_strerror(USOCK_ERR_TOO_LONG), "socket path too long for sun_path") == 0);
}

static void test_null_arguments(void) {
    usock_dir *dir = (usock_dir *)&passed; /* sentinel: must stay untouched */
    usock_dir *const sentinel = dir;
    CHECK(usock_create_dir(scratch, 0, NULL) == USOCK_ERR_INVALID);
    CHECK(strstr(usock_last_error(), "out_dir is NULL") != NULL);
    CHECK(usock_create_dir(scratch, 2, &dir) == USOCK_ERR_INVALID);
    CHECK(usock_create_dir("", 0, &dir) == USOCK_ERR_INVALID);
    CHECK(dir == sentinel);
    CHECK(usock_dir_path(NULL) == NULL);
    char buf[USOCK_PATH_MAX];
    CHECK(usock_socket_path(NULL, NULL, buf, sizeof buf) == USOCK_ERR_INVALID);
    int fd = -42;
    CHECK(usock_bind(NULL, NULL, 0, 0, &fd) == USOCK_ERR_INVALID);
    CHECK(fd == -42);
    CHECK(usock_cleanup(NULL) == USOCK_OK);
    CHECK(count_entries(scratch) == 0);
}

static void test_full_cycle(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    if (!dir) return;
    char dir_path[USOCK_PATH_MAX];
    snprintf(dir_path, sizeof dir_path, "%s", usock_dir_path(dir));
    CHECK(strncmp(dir_path, scratch, strlen(scratch)) == 0);
    CHECK(strstr(dir_path, "/usock-") != NULL);
    CHECK(mode_of(dir_path) == 0700);

    char path[USOCK_PATH_MAX];
    CHECK(usock_socket_path(dir, "api.sock", path, sizeof path) == USOCK_OK);
    int listener = -1;
    CHECK(usock_bind(dir, "api.sock", SOCK_STREAM, 4, &listener) == USOCK_OK);
    CHECK(listener >= 0);
    CHECK(mode_of(path) == 0600);

    int client = connect_to(path);
    CHECK(client >= 0);
    int conn = accept(listener, NULL, NULL);
    CHECK(conn >= 0);
    CHECK(write(client, "ping", 4) == 4);
    char got[5] = {0};
    CHECK(read(conn, got, 4) == 4);
    CHECK(strcmp(got, "ping") == 0);
    close(client);
    close(conn);

    CHECK(usock_cleanup(dir) == USOCK_OK);
    CHECK(mode_of(dir_path) == 0xFFFF); /* gone */
    CHECK(count_entries(scratch) == 0);
    /* usock_cleanup closes no descriptor the caller owns */
    CHECK(close(listener) == 0);
}

static void test_buffers_and_names(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    if (!dir) return;
    size_t need = strlen(usock_dir_path(dir)) + strlen("/sock") + 1;
    char buf[USOCK_PATH_MAX];
    memset(buf, '#', sizeof buf);
    CHECK(usock_socket_path(dir, NULL, buf, need - 1) == USOCK_ERR_BUFFER);
    CHECK(buf[0] == '#');
    CHECK(usock_socket_path(dir, NULL, NULL, 0) == USOCK_ERR_INVALID);
    CHECK(usock_socket_path(dir, NULL, buf, need) == USOCK_OK);
    CHECK(strlen(buf) == need - 1);
    const char *bad[] = {"", "a/b", ".", ".."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(usock_socket_path(dir, bad[i], buf, sizeof buf) == USOCK_ERR_INVALID);
        int fd = -1;
        CHECK(usock_bind(dir, bad[i], 0, 0, &fd) == USOCK_ERR_INVALID);
    }
    char long_name[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(usock_socket_path(dir, long_name, buf, sizeof buf) == USOCK_ERR_TOO_LONG);
    CHECK(strstr(usock_last_error(), "the limit here is 107") != NULL);
    int fd = -1;
    CHECK(usock_bind(dir, long_name, 0, 0, &fd) == USOCK_ERR_TOO_LONG);
    CHECK(usock_bind(dir, NULL, 12345, 0, &fd) == USOCK_ERR_INVALID);
    CHECK(fd == -1);
    CHECK(usock_cleanup(dir) == USOCK_OK);
    CHECK(count_entries(scratch) == 0);
}

static void test_in_use_and_datagram(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    if (!dir) return;
    int a = -1, b = -1, d = -1;
    CHECK(usock_bind(dir, NULL, 0, 0, &a) == USOCK_OK);
    CHECK(usock_bind(dir, NULL, 0, 0, &b) == USOCK_ERR_IN_USE);
    CHECK(usock_last_errno() == EADDRINUSE);
    CHECK(b == -1);
    CHECK(usock_bind(dir, "dgram", SOCK_DGRAM, 0, &d) == USOCK_OK);
    char path[USOCK_PATH_MAX];
    usock_socket_path(dir, "dgram", path, sizeof path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(sendto(c, "x", 1, 0, (struct sockaddr *)&addr, sizeof addr) == 1);
    char got;
    CHECK(recv(d, &got, 1, 0) == 1 && got == 'x');
    close(c);
    close(a);
    close(d);
    CHECK(usock_cleanup(dir) == USOCK_OK);
    CHECK(count_entries(scratch) == 0);
}

/* A socket bound by the caller at usock_socket_path, adopted: mode 0600, removed by cleanup. */
static void test_adopt(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    if (!dir) return;
    char path[USOCK_PATH_MAX];
    CHECK(usock_socket_path(dir, "own", path, sizeof path) == USOCK_OK);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(chmod(path, 0777) == 0);
    CHECK(usock_adopt(dir, "own") == USOCK_OK);
    CHECK(mode_of(path) == 0600);
    CHECK(listen(fd, 1) == 0);
    CHECK(usock_adopt(NULL, "own") == USOCK_ERR_INVALID);
    CHECK(usock_adopt(dir, "missing") == USOCK_ERR_SYSTEM && usock_last_errno() == ENOENT);
    close(fd);
    CHECK(usock_cleanup(dir) == USOCK_OK);
    CHECK(count_entries(scratch) == 0);
}

static void test_changed_and_unsafe(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    if (!dir) return;
    char file[USOCK_PATH_MAX + 16], dir_path[USOCK_PATH_MAX];
    snprintf(dir_path, sizeof dir_path, "%s", usock_dir_path(dir));
    snprintf(file, sizeof file, "%s/dropped", dir_path);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK(usock_cleanup(dir) == USOCK_ERR_CHANGED);
    CHECK(strstr(usock_last_error(), "dropped (a regular file)") != NULL);
    CHECK(mode_of(file) != 0xFFFF); /* left in place */
    unlink(file);
    rmdir(dir_path);

    char open_dir[128];
    snprintf(open_dir, sizeof open_dir, "%s/open", scratch);
    CHECK(mkdir(open_dir, 0700) == 0);
    CHECK(chmod(open_dir, 0777) == 0);
    usock_dir *none = NULL;
    CHECK(usock_create_dir(open_dir, 0, &none) == USOCK_ERR_UNSAFE);
    CHECK(none == NULL);
    CHECK(strstr(usock_last_error(), open_dir) != NULL);
    CHECK(count_entries(open_dir) == 0);
    rmdir(open_dir);
    CHECK(count_entries(scratch) == 0);
}

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        usock_dir *dir = NULL;
        if (usock_create_dir(scratch, 0, &dir) != USOCK_OK) return (void *)1;
        int fd = -1;
        if (usock_bind(dir, NULL, 0, 0, &fd) != USOCK_OK) return (void *)1;
        close(fd);
        if (usock_cleanup(dir) != USOCK_OK) return (void *)1;
    }
    return NULL;
}

static void test_threads(void) {
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        CHECK(result == NULL);
    }
    CHECK(count_entries(scratch) == 0);
}

/* usock_bind_fd: the caller's own socket bound, 0600, listening; a bound one refused. */
static void test_bind_fd(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(usock_bind_fd(dir, "mine", fd, 0) == USOCK_OK);
    char path[USOCK_PATH_MAX];
    CHECK(usock_socket_path(dir, "mine", path, sizeof path) == USOCK_OK);
    CHECK(mode_of(path) == 0600);
    int client = connect_to(path);
    CHECK(client >= 0);
    CHECK(usock_bind_fd(dir, "again", fd, 0) == USOCK_ERR_INVALID);
    CHECK(usock_bind_fd(dir, "neg", -1, 0) == USOCK_ERR_INVALID);
    CHECK(usock_bind_fd(NULL, "x", fd, 0) == USOCK_ERR_INVALID);
    if (client >= 0) close(client);
    close(fd);
    CHECK(usock_cleanup(dir) == USOCK_OK);
    CHECK(count_entries(scratch) == 0);
}

/*
 * This program's own listen(): it interposes the C library's for libusock too. While a test
 * holds `listen_gate` closed, a call entering listen() says so and waits until the test opens it,
 * so that a test can act while another thread is inside usock_bind.
 */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_changed = PTHREAD_COND_INITIALIZER;
static int listen_gate_closed, inside_listen;

int listen(int fd, int backlog) {
    static int (*real_listen)(int, int);
    if (!real_listen) *(void **)(&real_listen) = dlsym(RTLD_NEXT, "listen");
    pthread_mutex_lock(&gate_lock);
    if (listen_gate_closed) {
        inside_listen = 1;
        pthread_cond_broadcast(&gate_changed);
        while (listen_gate_closed) pthread_cond_wait(&gate_changed, &gate_lock);
        inside_listen = 0;
    }
    pthread_mutex_unlock(&gate_lock);
    return real_listen(fd, backlog);
}

static void set_listen_gate(int closed) {
    pthread_mutex_lock(&gate_lock);
    listen_gate_closed = closed;
    pthread_cond_broadcast(&gate_changed);
    pthread_mutex_unlock(&gate_lock);
}

static void wait_inside_listen(void) {
    pthread_mutex_lock(&gate_lock);
    while (!inside_listen) pthread_cond_wait(&gate_changed, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

struct bind_call {
    usock_dir *dir;
    int status, fd;
};

static void *bind_in_thread(void *arg) {
    struct bind_call *call = arg;
    call->status = usock_bind(call->dir, "busy", 0, 0, &call->fd);
    return NULL;
}

static void *cleanup_in_thread(void *arg) {
    struct bind_call *call = arg;
    call->status = usock_cleanup(call->dir);
    return NULL;
}

/*
 * usock_cleanup while another thread is inside usock_bind on the same handle (as a binding's
 * exit hook or garbage collector may do): cleanup waits for the call to leave before it frees
 * the handle (AddressSanitizer would report the use after free), calls that begin meanwhile are
 * refused, and afterwards nothing is left.
 */
static void test_cleanup_waits_for_calls_in_flight(void) {
    struct bind_call bind = {.fd = -1}, cleanup = {0};
    CHECK(usock_create_dir(scratch, 0, &bind.dir) == USOCK_OK);
    cleanup.dir = bind.dir;
    set_listen_gate(1);
    pthread_t binder, cleaner;
    pthread_create(&binder, NULL, bind_in_thread, &bind);
    wait_inside_listen();
    pthread_create(&cleaner, NULL, cleanup_in_thread, &cleanup);
    /* A call that begins once cleanup has started is refused; the bind holds the handle. */
    char path[USOCK_PATH_MAX];
    int status;
    while ((status = usock_socket_path(bind.dir, NULL, path, sizeof path)) == USOCK_OK)
        usleep(1000);
    CHECK(status == USOCK_ERR_INVALID);
    CHECK(strstr(usock_last_error(), "being cleaned up") != NULL);
    set_listen_gate(0);
    pthread_join(binder, NULL);
    pthread_join(cleaner, NULL);
    CHECK(bind.status == USOCK_OK);
    CHECK(cleanup.status == USOCK_OK);
    if (bind.fd >= 0) close(bind.fd);
    CHECK(count_entries(scratch) == 0);
}

/* usock_connect: a descriptor on success (close-on-exec); the errno of each failure; out_fd
 * untouched on failure. */
static void test_connect(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    int listener = -1, fd = -1;
    CHECK(usock_bind(dir, NULL, SOCK_STREAM, 0, &listener) == USOCK_OK);
    char path[USOCK_PATH_MAX];
    CHECK(usock_socket_path(dir, NULL, path, sizeof path) == USOCK_OK);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_ANY, &fd) == USOCK_OK && fd >= 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);

    int untouched = -7;
    char other[USOCK_PATH_MAX + 8];
    snprintf(other, sizeof other, "%s/none", usock_dir_path(dir));
    CHECK(usock_connect(other, SOCK_STREAM, 0, USOCK_SERVER_ANY, &untouched) == USOCK_ERR_SYSTEM);
    CHECK(usock_last_errno() == ENOENT && untouched == -7);
    CHECK(strstr(usock_last_error(), "nothing is there") != NULL);
    CHECK(usock_connect(path, SOCK_DGRAM, 0, USOCK_SERVER_ANY, &untouched) == USOCK_ERR_SYSTEM);
    CHECK(usock_last_errno() == EPROTOTYPE);
    close(listener);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_ANY, &untouched) == USOCK_ERR_SYSTEM);
    CHECK(usock_last_errno() == ECONNREFUSED && untouched == -7);

    char longpath[300];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    CHECK(usock_connect(longpath, SOCK_STREAM, 0, USOCK_SERVER_ANY, &untouched) == USOCK_ERR_TOO_LONG);
    CHECK(usock_last_errno() == ENAMETOOLONG);
    CHECK(usock_connect(path, SOCK_STREAM, 0x80, USOCK_SERVER_ANY, &untouched) == USOCK_ERR_INVALID);
    CHECK(usock_connect(NULL, SOCK_STREAM, 0, USOCK_SERVER_ANY, &untouched) == USOCK_ERR_INVALID);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_ANY, NULL) == USOCK_ERR_INVALID);
    CHECK(untouched == -7);
    CHECK(usock_cleanup(dir) == USOCK_OK);
}

/* A new unbound stream socket, close-on-exec (macOS has no SOCK_CLOEXEC). */
static int stream_socket(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

/* usock_bind_path: a well-known path in a directory only the user can write to. */
static void test_bind_path(void) {
    usock_dir *home = NULL;
    CHECK(usock_create_dir(scratch, 0, &home) == USOCK_OK);
    char path[USOCK_PATH_MAX + 16], lock[USOCK_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/app.sock", usock_dir_path(home));
    snprintf(lock, sizeof lock, "%s/app.sock.lock", usock_dir_path(home));

    usock_bound_path *first = NULL, *second = NULL, *untouched = (usock_bound_path *)&lock;
    int s1 = stream_socket();
    CHECK(usock_bind_path(path, s1, 0, 0, &first) == USOCK_OK && first != NULL);
    CHECK(mode_of(path) == 0600 && mode_of(lock) == 0600);
    int c = -1;
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_ANY, &c) == USOCK_OK);
    close(c);

    /* A live server is not displaced... */
    int s2 = stream_socket();
    CHECK(usock_bind_path(path, s2, 0, 0, &untouched) == USOCK_ERR_IN_USE);
    CHECK(untouched == (usock_bound_path *)&lock);
    CHECK(strstr(usock_last_error(), "a server answers") != NULL);
    close(s2);
    /* ...except in replace mode; the first server's unbind then leaves the new socket. */
    s2 = stream_socket();
    CHECK(usock_bind_path(path, s2, 0, USOCK_REPLACE, &second) == USOCK_OK);
    CHECK(usock_unbind_path(first) == USOCK_OK);
    close(s1);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_ANY, &c) == USOCK_OK);
    close(c);
    CHECK(usock_unbind_path(second) == USOCK_OK);
    close(s2);
    CHECK(access(path, F_OK) != 0 && access(lock, F_OK) == 0);
    CHECK(usock_unbind_path(NULL) == USOCK_OK);

    /* Bad input. */
    CHECK(usock_bind_path(path, 0, 0, 0x10, &untouched) == USOCK_ERR_INVALID);
    CHECK(usock_bind_path(path, -1, 0, 0, &untouched) == USOCK_ERR_INVALID);
    CHECK(usock_bind_path(NULL, 0, 0, 0, &untouched) == USOCK_ERR_INVALID);
    int s3 = stream_socket();
    CHECK(usock_bind_path("/tmp/app.sock", s3, 0, 0, &untouched) == USOCK_ERR_UNSAFE);
    CHECK(strstr(usock_last_error(), "sticky") != NULL);
    close(s3);
    CHECK(untouched == (usock_bound_path *)&lock);
    unlink(lock);
    CHECK(usock_cleanup(home) == USOCK_OK);
}

struct sweep_seen {
    int removed, kept;
    char last_reason[256];
};

static void on_swept(void *ctx, const char *path, int removed, const char *reason) {
    struct sweep_seen *seen = ctx;
    (void)path;
    if (removed) {
        seen->removed++;
    } else {
        seen->kept++;
        snprintf(seen->last_reason, sizeof seen->last_reason, "%s", reason);
    }
}

/* Hand-off, take-over and the sweep: a handed-off directory is kept while its descriptor is
 * open, taken over with it, and removed by the sweep once nobody holds it. */
static void test_hand_off_take_over_and_sweep(void) {
    usock_dir *parent = NULL, *dir = NULL, *again = NULL;
    CHECK(usock_create_dir(scratch, 0, &parent) == USOCK_OK);
    const char *where = usock_dir_path(parent);
    CHECK(usock_create_dir(where, 0, &dir) == USOCK_OK);
    char path[USOCK_PATH_MAX];
    snprintf(path, sizeof path, "%s", usock_dir_path(dir));
    int lock = -1;
    CHECK(usock_hand_off(dir, &lock) == USOCK_OK && lock >= 3);
    CHECK((fcntl(lock, F_GETFD) & FD_CLOEXEC) == 0);
    CHECK(access(path, F_OK) == 0);

    struct sweep_seen seen = {0, 0, ""};
    size_t removed = 99;
    CHECK(usock_sweep(where, 0, 0, on_swept, &seen, &removed) == USOCK_OK);
    CHECK(removed == 0 && seen.kept == 1 && strstr(seen.last_reason, "holds its lock") != NULL);

    CHECK(usock_take_over(path, lock, 0, &again) == USOCK_OK);
    CHECK(usock_take_over("relative", -1, 0, &dir) == USOCK_ERR_INVALID);
    int lock2 = -1;
    CHECK(usock_hand_off(again, &lock2) == USOCK_OK);
    close(lock2); /* nobody holds it now */
    memset(&seen, 0, sizeof seen);
    CHECK(usock_sweep(where, 3600, 0, on_swept, &seen, &removed) == USOCK_OK);
    CHECK(removed == 0 && strstr(seen.last_reason, "grace period") != NULL);
    CHECK(usock_sweep(where, 0, 0, NULL, NULL, &removed) == USOCK_OK && removed == 1);
    CHECK(access(path, F_OK) != 0);
    CHECK(usock_sweep(where, 0, 1, NULL, NULL, NULL) == USOCK_ERR_INVALID);
    CHECK(usock_cleanup(parent) == USOCK_OK);
}

/* usock_dir_idle: a directory may go only when a socket is there and none answers (datagram
 * included); the check changes nothing and the handle stays the caller's. */
static void test_dir_idle(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    CHECK(usock_dir_idle(dir) == USOCK_ERR_IN_USE); /* nothing bound yet */
    CHECK(strstr(usock_last_error(), "nothing is bound") != NULL);
    int listener = -1, dgram = -1;
    CHECK(usock_bind(dir, "s", SOCK_STREAM, 0, &listener) == USOCK_OK);
    CHECK(usock_dir_idle(dir) == USOCK_ERR_IN_USE);
    CHECK(strstr(usock_last_error(), "answers (SOCK_STREAM)") != NULL);
    close(listener);
    CHECK(usock_dir_idle(dir) == USOCK_OK);
    CHECK(usock_bind(dir, "d", SOCK_DGRAM, 0, &dgram) == USOCK_OK);
    CHECK(usock_dir_idle(dir) == USOCK_ERR_IN_USE);
    CHECK(strstr(usock_last_error(), "answers (SOCK_DGRAM)") != NULL);
    close(dgram);
    CHECK(usock_dir_idle(dir) == USOCK_OK);
    CHECK(count_entries(usock_dir_path(dir)) == 2); /* nothing removed by the check */
    CHECK(usock_dir_idle(NULL) == USOCK_ERR_INVALID);
    CHECK(usock_cleanup(dir) == USOCK_OK);
    CHECK(count_entries(scratch) == 0);
}

/* Peer credentials, the accept policy and the client's check of the server. */
static void test_peer_and_policy(void) {
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(scratch, 0, &dir) == USOCK_OK);
    int listener = -1, c = -1, s = -1;
    CHECK(usock_bind(dir, NULL, SOCK_STREAM, 0, &listener) == USOCK_OK);
    char path[USOCK_PATH_MAX];
    CHECK(usock_socket_path(dir, NULL, path, sizeof path) == USOCK_OK);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_SELF_OR_ROOT, &c) == USOCK_OK);
    usock_peer peer = {0, 0, 0};
    CHECK(usock_accept(NULL, listener, &peer, &s) == USOCK_OK);
    CHECK(peer.uid == geteuid() && peer.gid == getegid() && peer.pid == getpid());
    usock_peer server = {0, 0, 0};
    CHECK(usock_peer_of(c, &server) == USOCK_OK && server.uid == geteuid());
    close(c);
    close(s);

    /* A uid list without us: our own connection is refused, closed and counted. */
    uint32_t others[] = {4242, 65534};
    usock_policy *policy = NULL;
    CHECK(usock_policy_new(USOCK_ALLOW_UIDS, others, 2, &policy) == USOCK_OK);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_ANY, &c) == USOCK_OK);
    CHECK(fcntl(listener, F_SETFL, O_NONBLOCK) == 0);
    int untouched = -7;
    CHECK(usock_accept(policy, listener, NULL, &untouched) == USOCK_ERR_SYSTEM);
    CHECK(usock_last_errno() == EAGAIN && untouched == -7);
    uint64_t count = 0;
    int64_t last = 0;
    CHECK(usock_policy_refused(policy, &count, &last) == USOCK_OK);
    CHECK(count == 1 && last == (int64_t)geteuid());
    char b;
    CHECK(read(c, &b, 1) == 0); /* the server closed it */
    close(c);
    CHECK(usock_policy_free(policy) == USOCK_OK);

    /* The client's check: a server of another uid is refused. */
    CHECK(usock_connect(path, SOCK_STREAM, 0, (int64_t)geteuid() + 1, &untouched) == USOCK_ERR_UNSAFE);
    CHECK(strstr(usock_last_error(), "runs as uid") != NULL && untouched == -7);
    CHECK(usock_last_errno() == 0); /* the status alone tells it from a failed connect */
    CHECK(usock_connect(path, SOCK_STREAM, 0, -3, &untouched) == USOCK_ERR_INVALID);
    CHECK(usock_policy_new(99, NULL, 0, &policy) == USOCK_ERR_INVALID);
    CHECK(usock_policy_new(USOCK_ALLOW_GROUP, others, 2, &policy) == USOCK_ERR_INVALID);
    CHECK(usock_peer_of(-1, &peer) == USOCK_ERR_INVALID);
    close(listener);
    CHECK(usock_cleanup(dir) == USOCK_OK);
}

/* The system's number in /proc/sys/kernel/NAME, or the fallback where it does not say. */
static uint32_t proc_id(const char *name, uint32_t fallback) {
    char path[64];
    snprintf(path, sizeof path, "/proc/sys/kernel/%s", name);
    FILE *f = fopen(path, "r");
    unsigned long value = fallback;
    if (f) {
        if (fscanf(f, "%lu", &value) != 1) value = fallback;
        fclose(f);
    }
    return (uint32_t)value;
}

/* usock_overflow_ids gives what the system says (Linux), else OVERFLOW_UID and OVERFLOW_GID. */
static void test_overflow_ids(void) {
    uint32_t uid = 0, gid = 0;
    CHECK(usock_overflow_ids(&uid, &gid) == USOCK_OK);
    CHECK(uid == proc_id("overflowuid", OVERFLOW_UID));
    CHECK(gid == proc_id("overflowgid", OVERFLOW_GID));
    CHECK(usock_overflow_ids(NULL, NULL) == USOCK_OK);
}

/* USOCK_LONG_PATHS: a socket path beyond sun_path, bound and connected (Linux through /proc,
 * FreeBSD with bindat/connectat, where no address reaches it; the portable build, like macOS,
 * OpenBSD and NetBSD, keeps such paths USOCK_ERR_TOO_LONG). */
static void test_long_paths(void) {
    char deep[512];
    snprintf(deep, sizeof deep, "%s", scratch);
    while (strlen(deep) < 180) {
        strcat(deep, "/dddddddddddddddddddddddddddddddddddddddd");
        CHECK(mkdir(deep, 0755) == 0);
    }
    usock_dir *dir = NULL;
    CHECK(usock_create_dir(deep, 0, &dir) == USOCK_ERR_TOO_LONG);
#if !(defined(__linux__) || defined(__FreeBSD__)) || defined(USOCK_TEST_PORTABLE)
    CHECK(usock_create_dir(deep, USOCK_LONG_PATHS, &dir) == USOCK_ERR_TOO_LONG);
#else
    CHECK(usock_create_dir(deep, USOCK_LONG_PATHS, &dir) == USOCK_OK);
    int listener = -1, c = -1;
    CHECK(usock_bind(dir, NULL, SOCK_STREAM, 0, &listener) == USOCK_OK);
    char path[1024], address[USOCK_PATH_MAX], small[USOCK_PATH_MAX];
    CHECK(usock_socket_path(dir, NULL, small, sizeof small) == USOCK_ERR_BUFFER);
    CHECK(usock_socket_path(dir, NULL, path, sizeof path) == USOCK_OK && strlen(path) > 107);
#ifdef __FreeBSD__
    CHECK(usock_socket_address(dir, NULL, address, sizeof address) == USOCK_ERR_TOO_LONG);
#else
    CHECK(usock_socket_address(dir, NULL, address, sizeof address) == USOCK_OK);
    CHECK(strncmp(address, "/proc/thread-self/fd/", 21) == 0);
#endif
    CHECK(mode_of(path) == 0600);
    CHECK(usock_connect(path, SOCK_STREAM, 0, USOCK_SERVER_SELF_OR_ROOT, &c) == USOCK_OK);
    close(c);
    close(listener);
    CHECK(usock_cleanup(dir) == USOCK_OK);
#endif
    while (strlen(deep) > strlen(scratch)) {
        CHECK(rmdir(deep) == 0);
        *strrchr(deep, '/') = '\0';
    }
}

int main(void) {
    snprintf(scratch, sizeof scratch, "/tmp/usock-ctest-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(scratch, 0755);
    RUN(test_version);
    RUN(test_path_max);
    RUN(test_strerror_never_null);
    RUN(test_null_arguments);
    RUN(test_full_cycle);
    RUN(test_buffers_and_names);
    RUN(test_in_use_and_datagram);
    RUN(test_adopt);
    RUN(test_changed_and_unsafe);
    RUN(test_threads);
    RUN(test_bind_fd);
    RUN(test_cleanup_waits_for_calls_in_flight);
    RUN(test_connect);
    RUN(test_bind_path);
    RUN(test_hand_off_take_over_and_sweep);
    RUN(test_dir_idle);
    RUN(test_peer_and_policy);
    RUN(test_overflow_ids);
    RUN(test_long_paths);
    rmdir(scratch);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
