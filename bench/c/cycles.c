/*
 * One cycle = make a private directory, bind and listen on a socket in it, close it, remove
 * everything. `cycles MODE PARENT N` runs N cycles and prints the microseconds per cycle.
 *   limit: the bare minimum with no checks (random name, mkdir 0700, socket, bind, listen,
 *          close, unlink, rmdir): the physical limit.
 *   usock: the same through the usock C ABI.
 */
#define _GNU_SOURCE
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

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s limit|usock PARENT|auto N\n", argv[0]);
        return 2;
    }
    const char *parent = strcmp(argv[2], "auto") == 0 ? NULL : argv[2];
    long n = atol(argv[3]);
    void (*cycle)(const char *) = strcmp(argv[1], "limit") == 0 ? limit_cycle : usock_cycle;
    if (!parent && cycle == limit_cycle) parent = "/tmp";
    for (int i = 0; i < 50; i++) cycle(parent); /* warm up */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) cycle(parent);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3;
    printf("%.3f\n", n > 0 ? us / (double)n : 0.0);
    return 0;
}
