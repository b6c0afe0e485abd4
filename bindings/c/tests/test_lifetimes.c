/*
 * The C ABI at the edges of a thread's and a process's life: usock called from an atexit
 * handler (after the C library ran the thread-local destructors) and from a pthread_key
 * destructor, with pointers from usock_last_error() taken earlier. Every call must keep its
 * documented status and message. Built and run like test_usock.c, under AddressSanitizer.
 * Ends with "N passed, N failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usock.h"

static int passed, failed;
static char scratch[64];

static void report(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", name);
    if (ok) passed++; else failed++;
}

/* What the hooks below check, run at the very end of a thread's or the process's life: an
 * earlier message pointer is still readable, cleanup works, and a failing call still reports
 * USOCK_ERR_SYSTEM with its errno and a message naming the path. */
static usock_dir *late_dir;
static const char *early_message;
static char late_path[USOCK_PATH_MAX];

static void prepare_late_calls(void) {
    usock_dir *missing = NULL;
    usock_create_dir("/nonexistent-usock-test/early", 0, &missing); /* sets the thread's error */
    early_message = usock_last_error();
    if (usock_create_dir(scratch, 0, &late_dir) == USOCK_OK)
        snprintf(late_path, sizeof late_path, "%s", usock_dir_path(late_dir));
    int fd = -1;
    usock_bind(late_dir, NULL, 0, 0, &fd);
}

static int late_calls_work(void) {
    int ok = strstr(early_message, "/nonexistent-usock-test") != NULL;
    if (!ok) fprintf(stderr, "  early message lost: \"%s\"\n", early_message);
    int rc = usock_cleanup(late_dir);
    struct stat st;
    if (rc != USOCK_OK || stat(late_path, &st) == 0) {
        fprintf(stderr, "  cleanup: status %d (%s), directory %s\n", rc, usock_last_error(),
                stat(late_path, &st) == 0 ? "still there" : "gone");
        ok = 0;
    }
    usock_dir *missing = NULL;
    rc = usock_create_dir("/nonexistent-usock-test/late", 0, &missing);
    if (rc != USOCK_ERR_SYSTEM || usock_last_errno() != ENOENT ||
        strstr(usock_last_error(), "/nonexistent-usock-test/late") == NULL) {
        fprintf(stderr, "  late failure: status %d, errno %d, message \"%s\"\n", rc,
                usock_last_errno(), usock_last_error());
        ok = 0;
    }
    return ok;
}

static void at_exit_hook(void) {
    _exit(late_calls_work() ? 0 : 1);
}

/* A process that calls usock from an atexit handler, as C programs clean up. */
static void test_calls_from_an_atexit_handler(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        prepare_late_calls();
        atexit(at_exit_hook);
        exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    report("calls_from_an_atexit_handler", WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static pthread_key_t key;
static int key_result = -1;

static void key_destructor(void *value) {
    (void)value;
    key_result = late_calls_work();
}

static void *thread_main(void *arg) {
    (void)arg;
    prepare_late_calls();
    pthread_setspecific(key, &key);
    return NULL;
}

/* A thread whose pthread_key destructor calls usock, after its thread-locals were destroyed. */
static void test_calls_from_a_thread_key_destructor(void) {
    pthread_key_create(&key, key_destructor);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    report("calls_from_a_thread_key_destructor", key_result == 1);
}

int main(void) {
    snprintf(scratch, sizeof scratch, "/tmp/usock-ctest-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(scratch, 0755);
    test_calls_from_an_atexit_handler();
    test_calls_from_a_thread_key_destructor();
    rmdir(scratch);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
