/*
 * usock example server: makes a private socket directory at the automatic location, listens on
 * <dir>/sock, and serves one client. With a client program as argument it starts that client
 * in another process, passing it the socket path, then shows that cleanup left nothing.
 *
 *   usock-server                 # prints the path, waits for one client
 *   usock-server ./usock-client  # runs the whole exchange
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usock.h"

static int fail(const char *what, int status) {
    fprintf(stderr, "usock-server: %s: %s (%s)\n", what, usock_strerror(status), usock_last_error());
    return 1;
}

int main(int argc, char **argv) {
    usock_dir *dir = NULL;
    int rc = usock_create_dir(NULL, 0, &dir);
    if (rc != USOCK_OK) return fail("create_dir", rc);

    int listener = -1;
    rc = usock_bind(dir, NULL, SOCK_STREAM, 0, &listener);
    if (rc != USOCK_OK) {
        usock_cleanup(dir);
        return fail("bind", rc);
    }
    char path[USOCK_PATH_MAX];
    usock_socket_path(dir, NULL, path, sizeof path);

    struct stat dst, sst;
    stat(usock_dir_path(dir), &dst);
    stat(path, &sst);
    printf("server: listening on %s\n", path);
    printf("server: directory mode %04o, socket mode %04o, owner uid %u\n",
           (unsigned)(dst.st_mode & 07777), (unsigned)(sst.st_mode & 07777), (unsigned)dst.st_uid);
    fflush(stdout);

    pid_t child = -1;
    if (argc > 1) {
        child = fork();
        if (child == 0) {
            execl(argv[1], argv[1], path, (char *)NULL);
            perror("usock-server: exec client");
            _exit(127);
        }
    }

    int conn = accept(listener, NULL, NULL);
    if (conn < 0) {
        perror("usock-server: accept");
        return 1;
    }
    char buf[256];
    ssize_t n = read(conn, buf, sizeof buf - 1);
    if (n < 0) n = 0;
    buf[n] = '\0';
    printf("server: received \"%s\"\n", buf);
    fflush(stdout);
    const char reply[] = "hello from the usock server";
    if (write(conn, reply, sizeof reply - 1) < 0) perror("usock-server: write");
    close(conn);

    int child_ok = 1;
    if (child > 0) {
        int status = 0;
        waitpid(child, &status, 0);
        child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    close(listener);

    char dir_path[USOCK_PATH_MAX];
    snprintf(dir_path, sizeof dir_path, "%s", usock_dir_path(dir));
    rc = usock_cleanup(dir);
    if (rc != USOCK_OK) return fail("cleanup", rc);
    struct stat gone;
    int left = lstat(dir_path, &gone) == 0;
    printf("server: cleanup %s: %s %s\n", left ? "FAILED" : "done", dir_path,
           left ? "is still there" : "no longer exists");
    return left || !child_ok;
}
