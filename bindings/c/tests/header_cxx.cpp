// The header compiles as C++ and its functions link with C linkage.
#include "usock.h"

#include <cstdio>
#include <cstring>

int main() {
    usock_dir *dir = nullptr;
    int rc = usock_create_dir(nullptr, 0, &dir);
    if (rc != USOCK_OK) {
        std::printf("create failed: %s\n", usock_last_error());
        return 1;
    }
    char path[USOCK_PATH_MAX];
    rc = usock_socket_path(dir, nullptr, path, sizeof path);
    int ok = rc == USOCK_OK && std::strstr(path, "/sock") != nullptr;
    ok = ok && usock_cleanup(dir) == USOCK_OK;
    std::printf("C++: %s\n", ok ? "header compiles and links" : "FAILED");
    return ok ? 0 : 1;
}
