/*
 * One cycle = make a private directory, bind and listen on a socket in it, close it, remove
 * everything. `cycles MODE PARENT N` runs N cycles and prints the microseconds per cycle.
 *   limit: the bare minimum with no checks (random name, mkdir 0700, socket, bind, listen,
 *          close, unlink, rmdir): the physical limit.
 *   usock: the same through the usock C ABI.
 * A well-known-path cycle binds a socket at a fixed path PARENT/wk.sock (PARENT writable by
 * its owner only), listens, closes and removes it:
 *   wk-limit: unlink (a stale socket), socket, bind, listen, close, unlink: no checks.
 *   wk-usock: socket, usock_bind_path, usock_unbind_path, close.
 * `cycles interleaved PARENT WK_PARENT N` runs the four in turn, one cycle each, N times in
 * this one process, and prints per line: pair, median of per-round ratios (rounds of 100
 * turns), and the total µs per cycle of each side.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "usock.h"

static void limit_cycle(const char *parent) {
    unsigned char r[9];
    if (getrandom(r, sizeof r, 0) != sizeof r) abort();
    char dir[USOCK_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/bare-%02x%02x%02x%02x%02x%02x%02x%02x", parent, r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7]);
    if (mkdir(dir, 0700) != 0) abort();
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/sock", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0)
        abort();
    close(fd);
    if (unlink(addr.sun_path) != 0 || rmdir(dir) != 0) abort();
}

static void usock_cycle(const char *parent) {
    usock_dir *d;
    int fd;
    if (usock_create_dir(parent, 0, &d) != USOCK_OK || usock_bind(d, NULL, 0, 128, &fd) != USOCK_OK) {
        fprintf(stderr, "usock: %s\n", usock_last_error());
        abort();
    }
    close(fd);
    if (usock_cleanup(d) != USOCK_OK) abort();
}

static void wk_path(const char *parent, struct sockaddr_un *addr) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    snprintf(addr->sun_path, sizeof addr->sun_path, "%s/wk.sock", parent);
}

static void wk_limit_cycle(const char *parent) {
    struct sockaddr_un addr;
    wk_path(parent, &addr);
    if (unlink(addr.sun_path) != 0 && errno != ENOENT) abort();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0)
        abort();
    close(fd);
    if (unlink(addr.sun_path) != 0) abort();
}

static void wk_usock_cycle(const char *parent) {
    struct sockaddr_un addr;
    wk_path(parent, &addr);
    usock_bound_path *b;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || usock_bind_path(addr.sun_path, fd, 128, 0, &b) != USOCK_OK) {
        fprintf(stderr, "usock: %s\n", usock_last_error());
        abort();
    }
    if (usock_unbind_path(b) != USOCK_OK) abort();
    close(fd);
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The four cycles in turn, one each, `n` times; ratios per round of 100 turns, so that the
 * machine's drift in speed between rounds cancels out. */
static int interleaved(const char *parent, const char *wk_parent, long n) {
    enum { LIMIT, USOCK, WK_LIMIT, WK_USOCK, KINDS, ROUND = 100 };
    void (*cycles[KINDS])(const char *) = {limit_cycle, usock_cycle, wk_limit_cycle, wk_usock_cycle};
    const char *where[KINDS] = {parent, parent, wk_parent, wk_parent};
    long rounds = n / ROUND;
    if (rounds < 1) return 2;
    double total[KINDS] = {0}, round[KINDS];
    double *ratio_dir = calloc(rounds, sizeof *ratio_dir), *ratio_wk = calloc(rounds, sizeof *ratio_wk);
    if (!ratio_dir || !ratio_wk) abort();
    for (int k = 0; k < KINDS; k++)
        for (int i = 0; i < 50; i++) cycles[k](where[k]); /* warm up */
    for (long r = 0; r < rounds; r++) {
        memset(round, 0, sizeof round);
        for (int i = 0; i < ROUND; i++)
            for (int k = 0; k < KINDS; k++) {
                double t0 = now_us();
                cycles[k](where[k]);
                round[k] += now_us() - t0;
            }
        for (int k = 0; k < KINDS; k++) total[k] += round[k];
        ratio_dir[r] = round[USOCK] / round[LIMIT];
        ratio_wk[r] = round[WK_USOCK] / round[WK_LIMIT];
    }
    qsort(ratio_dir, rounds, sizeof *ratio_dir, by_value);
    qsort(ratio_wk, rounds, sizeof *ratio_wk, by_value);
    double cycles_run = (double)rounds * ROUND;
    printf("private %.3f %.3f %.3f\n", ratio_dir[rounds / 2], total[USOCK] / cycles_run, total[LIMIT] / cycles_run);
    printf("well-known %.3f %.3f %.3f\n", ratio_wk[rounds / 2], total[WK_USOCK] / cycles_run,
           total[WK_LIMIT] / cycles_run);
    free(ratio_dir);
    free(ratio_wk);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "interleaved") == 0) return interleaved(argv[2], argv[3], atol(argv[4]));
    if (argc != 4) {
        fprintf(stderr, "usage: %s limit|usock|wk-limit|wk-usock PARENT|auto N\n"
                        "       %s interleaved PARENT WK_PARENT N\n", argv[0], argv[0]);
        return 2;
    }
    const char *parent = strcmp(argv[2], "auto") == 0 ? NULL : argv[2];
    long n = atol(argv[3]);
    void (*cycle)(const char *) = strcmp(argv[1], "limit") == 0      ? limit_cycle
                                  : strcmp(argv[1], "wk-limit") == 0 ? wk_limit_cycle
                                  : strcmp(argv[1], "wk-usock") == 0 ? wk_usock_cycle
                                                                     : usock_cycle;
    if (!parent && cycle != usock_cycle) parent = "/tmp";
    for (int i = 0; i < 50; i++) cycle(parent); /* warm up */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) cycle(parent);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3;
    printf("%.3f\n", n > 0 ? us / (double)n : 0.0);
    return 0;
}
