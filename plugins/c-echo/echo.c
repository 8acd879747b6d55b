/*
 * echo.c: the Echo Protocol (RFC 862) as a sockhost plugin in plain C.
 *
 * Contract: this file needs nothing but handler-sdk/include/sockhost.h and
 * the C library, and compiles warning-free with
 *
 *   cc -shared -fPIC -O2 -Wall -Wextra -Werror -I handler-sdk/include \
 *      plugins/c-echo/echo.c -o libc_echo.so
 *
 * Stream: every byte read is written back (partial writes and EINTR
 * handled, MSG_NOSIGNAL so a vanished peer is an error, not SIGPIPE) until
 * the client closes; a reset peer also ends the request quietly. Datagram:
 * each datagram is answered with the same bytes through host->reply. The
 * socket belongs to the host: it is never closed here. The plugin keeps no
 * state, so it is safe under every mixin, and ignores [listener.config].
 * It shows what any C plugin does: define the version record, keep the host
 * table, fill the plugin table without writing past its size.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sockhost.h"

SOCKHOST_DEFINE_ABI();

/* The host's table: static storage, valid for the life of the process. */
static const sockhost_host *host;

/* Nothing to keep per instance; create hands out this address. */
static int instance_token;

static int32_t echo_create(const sockhost_listener *listener, void **instance,
                           const char **error) {
    char line[256];
    int n;

    (void)error;
    n = snprintf(line, sizeof line, "c-echo serving listener %.*s",
                 (int)(listener->name.len > 200 ? 200 : listener->name.len),
                 listener->name.ptr);
    if (n > 0 && host->log != NULL) {
        size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        host->log(SOCKHOST_LOG_INFO, line, len);
    }
    *instance = &instance_token;
    return SOCKHOST_OK;
}

/* Attach `what` and errno's text to the request, for the host's log. */
static int32_t fail(sockhost_request *req, const char *what) {
    char msg[160];
    int n = snprintf(msg, sizeof msg, "c-echo: %s: %s", what, strerror(errno));
    if (n > 0 && host->set_error != NULL) {
        size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
        host->set_error(req, msg, len);
    }
    return SOCKHOST_ERROR;
}

/* Whether errno only says the client went away. */
static int peer_gone(void) {
    return errno == ECONNRESET || errno == EPIPE;
}

static int32_t echo_stream(sockhost_request *req) {
    char buf[64 * 1024];
    for (;;) {
        ssize_t got = recv(req->fd, buf, sizeof buf, 0);
        if (got == 0)
            return SOCKHOST_OK;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return peer_gone() ? SOCKHOST_OK : fail(req, "read");
        }
        size_t done = 0;
        while (done < (size_t)got) {
            ssize_t put = send(req->fd, buf + done, (size_t)got - done,
                               MSG_NOSIGNAL);
            if (put < 0) {
                if (errno == EINTR)
                    continue;
                return peer_gone() ? SOCKHOST_OK : fail(req, "write");
            }
            done += (size_t)put;
        }
    }
}

static int32_t echo_handle(void *instance, sockhost_request *req) {
    (void)instance;
    if (req->socktype == SOCK_DGRAM) {
        if (host->reply == NULL) {
            errno = ENOSYS;
            return fail(req, "reply");
        }
        /* An empty datagram may come with data == NULL; hand the host a
         * valid pointer all the same. */
        const void *data = req->data != NULL ? (const void *)req->data : "";
        if (host->reply(req, data, req->data_len) < 0)
            return fail(req, "reply");
        return SOCKHOST_OK;
    }
    return echo_stream(req);
}

SOCKHOST_EXPORT int32_t sockhost_plugin_init(const sockhost_host *h,
                                             sockhost_plugin *plugin) {
    sockhost_plugin table;

    if (h == NULL || plugin == NULL)
        return SOCKHOST_ERROR;
    host = h;

    memset(&table, 0, sizeof table);
    table.name = "c-echo";
    table.version = "0.1.0";
    table.create = echo_create;
    table.handle = echo_handle;

    /* Copy no more than the host's table holds, and keep its size. A table
     * too small for `handle`, which every plugin must provide, is refused. */
    uint32_t size = plugin->size;
    if (size < offsetof(sockhost_plugin, handle) + sizeof table.handle)
        return SOCKHOST_ERROR;
    memcpy(plugin, &table, size < sizeof table ? size : sizeof table);
    plugin->size = size;
    return SOCKHOST_OK;
}
