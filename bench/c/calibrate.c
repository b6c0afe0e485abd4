/* The cost of the cheap system calls usock adds, on this machine: µs per call. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    const int n = 200000;
    struct stat st;
    int fd = open(dir, O_PATH | O_DIRECTORY);
    double t0 = now();
    for (int i = 0; i < n; i++) fstatat(AT_FDCWD, dir, &st, AT_SYMLINK_NOFOLLOW);
    double t1 = now();
    for (int i = 0; i < n; i++) fstatat(fd, ".", &st, AT_SYMLINK_NOFOLLOW);
    double t2 = now();
    for (int i = 0; i < n; i++) fstat(fd, &st);
    double t3 = now();
    for (int i = 0; i < n; i++) close(openat(fd, ".", O_PATH | O_DIRECTORY));
    double t4 = now();
    for (int i = 0; i < n; i++) getpid();
    double t5 = now();
    /* What the sweep lock adds to a directory handle: flock(LOCK_SH) on a descriptor opened for
     * reading, and the lock's release when it is closed (the difference of these two loops). */
    for (int i = 0; i < n; i++) close(openat(fd, ".", O_RDONLY | O_DIRECTORY));
    double t6 = now();
    for (int i = 0; i < n; i++) {
        int d = openat(fd, ".", O_RDONLY | O_DIRECTORY);
        flock(d, LOCK_SH | LOCK_NB);
        close(d);
    }
    double t7 = now();
    /* flock(LOCK_UN) right before close (a well-known path's lock): the difference of two loops
     * that lock exclusively and close, with and without the explicit release. */
    for (int i = 0; i < n; i++) {
        int d = openat(fd, ".", O_RDONLY | O_DIRECTORY);
        flock(d, LOCK_EX | LOCK_NB);
        close(d);
    }
    double t8 = now();
    for (int i = 0; i < n; i++) {
        int d = openat(fd, ".", O_RDONLY | O_DIRECTORY);
        flock(d, LOCK_EX | LOCK_NB);
        flock(d, LOCK_UN);
        close(d);
    }
    double t9 = now();
    printf("lstat by path\t%.3f\nfstatat relative\t%.3f\nfstat\t%.3f\nopenat+close\t%.3f\ngetpid\t%.3f\n"
           "flock(LOCK_SH) and its release at close (the sweep lock of a handle)\t%.3f\n",
           (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / n, (t5 - t4) / n,
           ((t7 - t6) - (t6 - t5)) / n);
    printf("flock(LOCK_UN) before close\t%.3f\n", ((t9 - t8) - (t8 - t7)) / n);
    return 0;
}
