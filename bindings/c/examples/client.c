/*
 * usock example client: connects to the socket path given as its argument, sends a greeting
 * and prints the reply. A client needs no usock: only the path.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET-PATH\n", argv[0]);
        return 2;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "usock-client: path too long: %s\n", argv[1]);
        return 1;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("usock-client: connect");
        return 1;
    }
    const char hello[] = "hello from the C client";
    if (write(fd, hello, sizeof hello - 1) < 0) {
        perror("usock-client: write");
        return 1;
    }
    shutdown(fd, SHUT_WR);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0) {
        fprintf(stderr, "usock-client: no reply\n");
        return 1;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    printf("C client: received \"%s\"\n", buf);
    close(fd);
    return 0;
}
