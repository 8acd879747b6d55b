/*
 * sockhost.h: the plugin ABI of sockhostd, version 1.2.
 *
 * This header is the single source of truth for the ABI. The Rust SDK
 * (handler-sdk/src/sys.rs) mirrors it and a test compiles this file to check
 * every size, offset and constant against the Rust side.
 *
 * A plugin is a shared object that exports exactly two symbols:
 *
 *   sockhost_abi           a `const sockhost_abi_record`, the version record.
 *                          The host reads it BEFORE calling any plugin code and
 *                          refuses the plugin when the magic differs, the major
 *                          differs, the minor is newer than the host's, or the
 *                          record is smaller than a v1 record.
 *   sockhost_plugin_init   the entry function. It receives the host table and
 *                          fills the plugin table.
 *
 * A plugin written in C needs nothing but this header:
 *
 *   cc -shared -fPIC -O2 -I handler-sdk/include echo.c -o libecho.so
 *
 * The model is Python's socketserver. The host (sockhostd) owns the socket and
 * the dispatch (sync, thread or fork: see `mixin`); the plugin is the request
 * handler: per request the host calls setup, then handle, then finish (finish
 * runs whenever setup succeeded, even when handle failed).
 *
 * Life cycle, in one worker process that serves one listener:
 *
 *   dlopen(RTLD_NOW|RTLD_LOCAL)      never dlclose'd
 *   check sockhost_abi
 *   sockhost_plugin_init(host, plugin)
 *   plugin->create(listener, &instance)   once
 *     per request: verify_request? -> setup? -> handle -> finish?
 *     each loop turn: service_actions?; after `timeout` idle: handle_timeout?
 *   plugin->destroy(instance)        on graceful stop
 *
 * Threading: create, destroy, verify_request, service_actions and
 * handle_timeout run on the worker's main thread. setup, handle, finish and
 * handle_error run on the thread serving that request: with mixin "thread",
 * requests run concurrently on different threads against the SAME instance,
 * so everything the instance holds must be thread-safe. With mixin "fork",
 * request hooks run in a child process forked per request: anything they
 * change in the instance is lost when the child exits. Host functions may be
 * called from any thread.
 *
 * Compatibility: every struct starts with its size and only ever grows at the
 * end. A minor version adds fields or functions at the end; a major version
 * is a break. A reader must check `size` before touching a field added after
 * v1.0.
 *
 * Added in 1.1 (each at the end of its struct):
 *   sockhost_listener.config_dir, .listen_fd   where the config lives, and
 *                                               the listening socket
 *   sockhost_host.depends_on                    name a file whose change on
 *                                               disk restarts the listener
 *                                               on the next reload
 *   sockhost_plugin.before_fork, .after_fork_parent, .after_fork_child
 *                                               around the host's fork of
 *                                               a request child
 * A 1.0 plugin keeps working: the host reads the 1.1 plugin fields only
 * from a plugin whose version record says minor >= 1.
 *
 * Added in 1.2 (each at the end of its struct), for plugins that run
 * programs (libsockhost_exec.so) or relay output that is not theirs:
 *   sockhost_listener.log_fd, .max_packet_size  the worker's log relay (a
 *                                               line written to it is a
 *                                               log record), and the
 *                                               listener's datagram size
 *   sockhost_host.take_listener                 serve the listening socket
 *                                               itself (inetd's `wait`)
 *   sockhost_host.set_detail                    text for the request's
 *                                               access log line
 *   sockhost_host.exec_request                  a fork-mode request child
 *                                               is about to become a
 *                                               program (execve)
 *   sockhost_host.refuse_request                the plugin's own check,
 *                                               run inside the request,
 *                                               refused it: count it as
 *                                               refused, not served
 * Nothing new is read from a plugin: 1.0 and 1.1 plugins load unchanged.
 */
#ifndef SOCKHOST_H
#define SOCKHOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---------------------------------------------------------- */

/* "SOCKHOST" read as a big-endian 64-bit number. */
#define SOCKHOST_ABI_MAGIC UINT64_C(0x534F434B484F5354)
#define SOCKHOST_ABI_MAJOR 1
#define SOCKHOST_ABI_MINOR 2 /* 1.1: fork hooks, listener config_dir/listen_fd, depends_on, request proxy_tlvs; 1.2: log_fd, max_packet_size, take_listener, set_detail, exec_request, refuse_request */

/* Names of the two exported symbols. */
#define SOCKHOST_ABI_SYMBOL "sockhost_abi"
#define SOCKHOST_ENTRY_SYMBOL "sockhost_plugin_init"

/* The version record. Immutable, static storage, read by the host before
 * any plugin code runs. */
typedef struct sockhost_abi_record {
    uint64_t magic; /* SOCKHOST_ABI_MAGIC */
    uint32_t size;  /* sizeof(sockhost_abi_record) as the plugin was built */
    uint16_t major; /* SOCKHOST_ABI_MAJOR the plugin was built against */
    uint16_t minor; /* SOCKHOST_ABI_MINOR the plugin was built against */
} sockhost_abi_record;

#if defined(__GNUC__) || defined(__clang__)
#define SOCKHOST_EXPORT __attribute__((visibility("default")))
#else
#define SOCKHOST_EXPORT
#endif

/* Defines the version record. Write `SOCKHOST_DEFINE_ABI();` once at file
 * scope in every plugin. */
#define SOCKHOST_DEFINE_ABI()                                                  \
    SOCKHOST_EXPORT const sockhost_abi_record sockhost_abi = {                 \
        SOCKHOST_ABI_MAGIC, (uint32_t)sizeof(sockhost_abi_record),             \
        SOCKHOST_ABI_MAJOR, SOCKHOST_ABI_MINOR}

/* ---- constants -------------------------------------------------------- */

/* Return values of create, setup, handle, finish, verify_request and the
 * entry function. Any value other than SOCKHOST_OK is a failure. */
#define SOCKHOST_OK 0
#define SOCKHOST_ERROR (-1)

/* Log levels, for host->log and host->log_enabled. */
#define SOCKHOST_LOG_ERROR 1
#define SOCKHOST_LOG_WARN 2
#define SOCKHOST_LOG_INFO 3
#define SOCKHOST_LOG_DEBUG 4
#define SOCKHOST_LOG_TRACE 5

/* Dispatch modes (the socketserver mixins), in sockhost_listener.mixin. */
#define SOCKHOST_MIXIN_SYNC 0
#define SOCKHOST_MIXIN_THREAD 1
#define SOCKHOST_MIXIN_FORK 2

/* Bits of sockhost_plugin.flags. A host that does not know a bit ignores it.
 * POLL_SERVICE_ACTIONS: call service_actions at least every 0.5 s while the
 * listener is idle too (socketserver's serve_forever poll_interval), not
 * only on a turn of the serve loop that something woke.
 * TRUNCATE_DATAGRAMS: hand on a datagram longer than max_packet_size cut to
 * its first max_packet_size bytes, as socketserver's recvfrom(max_packet_size)
 * does, instead of dropping it.
 * ONE_CPU: the plugin's request threads take turns on one lock of its own
 * (an embedded interpreter's global lock), so its workers run better each
 * kept on a CPU of its own: with the listener's cpu_affinity = "auto" (the
 * default) the host keeps a thread-mode worker, or each of several sync
 * workers, on one CPU before create (never a fork-mode one). A host that
 * predates this bit ignores it, as any other. */
#define SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS 0x1
#define SOCKHOST_PLUGIN_TRUNCATE_DATAGRAMS 0x2
#define SOCKHOST_PLUGIN_ONE_CPU 0x4

/* ---- data handed to the plugin ---------------------------------------- */

/* A UTF-8 string. `ptr` is never NULL and is NUL-terminated; `len` does not
 * count the NUL. Borrowed: valid only as long as the struct holding it. */
typedef struct sockhost_str {
    const char *ptr;
    size_t len;
} sockhost_str;

/* The listener a plugin instance serves. Passed to create; valid only for
 * the duration of that call: copy what you keep. */
typedef struct sockhost_listener {
    uint32_t size;     /* sizeof(sockhost_listener) as the host knows it */
    int32_t family;    /* AF_INET, AF_INET6 or AF_UNIX */
    int32_t socktype;  /* SOCK_STREAM or SOCK_DGRAM */
    int32_t mixin;     /* SOCKHOST_MIXIN_* */
    sockhost_str name; /* the listener's `name` from the config */
    sockhost_str address;     /* the configured address, as written */
    sockhost_str config_toml; /* [listener.config] as a TOML document; "" if absent */
    /* ---- ABI 1.1: check `size` before reading these ---- */
    sockhost_str config_dir; /* absolute folder of the config file that
                              * declares this listener (the base for
                              * relative paths in [listener.config]) */
    int32_t listen_fd;       /* the listening socket, borrowed: never close
                              * it; -1 when there is none (sockhostd --check) */
    uint32_t reserved1;      /* zero */
    /* ---- ABI 1.2: check `size` before reading these ---- */
    int32_t log_fd;          /* the write end of the worker's log relay, or
                              * -1 (sockhostd --check). Each line written to
                              * it (by this process, a request child, or a
                              * program given it as fd 2) becomes one record
                              * in the daemon's log, carrying the listener
                              * and the writer's pid, at info level unless
                              * it starts with an sd-daemon "<N>" priority
                              * prefix. Borrowed: never close it; dup2 it
                              * onto a program's fd 2. CLOEXEC. */
    uint32_t max_packet_size; /* the listener's max_packet_size (dgram) */
} sockhost_listener;

/* One request. The host owns it; the plugin gets the same pointer in setup,
 * handle, finish and handle_error for one request, valid until finish (or a
 * failed setup) returns. */
typedef struct sockhost_request {
    uint32_t size;     /* sizeof(sockhost_request) as the host knows it */
    int32_t socktype;  /* SOCK_STREAM or SOCK_DGRAM */
    int32_t fd;        /* stream: the connected socket; dgram: the listening
                        * socket. Borrowed: the host shuts it down and closes
                        * it after finish; never close it yourself. Stream
                        * sockets are blocking, with the listener's
                        * connection_timeout as SO_RCVTIMEO/SO_SNDTIMEO. */
    int32_t family;    /* AF_INET, AF_INET6 or AF_UNIX */
    sockhost_str client; /* the client address as text: "127.0.0.1:PORT",
                          * "[::1]:PORT", a unix path, "@name" for an abstract
                          * unix address, or "" for an unnamed unix peer */
    const void *client_addr;  /* the client address as a struct sockaddr */
    uint32_t client_addr_len; /* its length in bytes */
    uint32_t reserved;        /* zero */
    const uint8_t *data;      /* dgram: the datagram's bytes; stream: NULL */
    size_t data_len;          /* dgram: its length; stream: 0 */
    void *user;        /* the plugin's own slot, NULL before setup. Set it in
                        * setup, free what it points to in finish. */
    void *host_private; /* the host's; do not touch */

    /* Since ABI 1.1: read these only when `size` covers them, e.g.
     * req->size >= offsetof(sockhost_request, proxy_tlvs_len) + sizeof(size_t)
     * (an older host passes a shorter struct). */
    const uint8_t *proxy_tlvs; /* a proxy_protocol listener's PROXY v2 header:
                                * its TLVs exactly as sent, one after the
                                * other (1 byte type, 2 bytes big-endian
                                * length, the value), checked to be well
                                * formed. NULL when there are none (v1, no
                                * TLVs, proxy_protocol off). Owned by the
                                * host, valid (and unchanged) until the
                                * request ends, like `client`. With
                                * proxy_protocol, `client` and `client_addr`
                                * are the address the header names. */
    size_t proxy_tlvs_len;     /* their length in bytes; 0 when none */
} sockhost_request;

/* ---- host functions ----------------------------------------------------- */

/* Functions the host offers. Static storage: the pointer passed to the entry
 * function stays valid for the life of the process; keep it. Every function
 * may be called from any thread. */
typedef struct sockhost_host {
    uint32_t size;      /* sizeof(sockhost_host) as the host knows it */
    uint16_t abi_major; /* the host's SOCKHOST_ABI_MAJOR */
    uint16_t abi_minor; /* the host's SOCKHOST_ABI_MINOR */

    /* Log `len` bytes of UTF-8 `msg` (not NUL-terminated) at `level` into
     * the daemon's log, tagged with the plugin and listener names. */
    void (*log)(int32_t level, const char *msg, size_t len);
    /* Nonzero when a message at `level` would be logged. */
    int32_t (*log_enabled)(int32_t level);
    /* Attach an error message (copied) to `req`: the host reports it through
     * handle_error when the hook returns a failure. */
    void (*set_error)(sockhost_request *req, const char *msg, size_t len);
    /* Datagram requests: send `len` bytes of `buf` to the request's client.
     * Returns the bytes sent, or -1 with errno set. */
    ssize_t (*reply)(sockhost_request *req, const void *buf, size_t len);

    /* ---- ABI 1.1: check `size` before calling these ---- */
    /* Name a file (absolute path, `len` bytes of UTF-8, not NUL-terminated)
     * this listener's code was loaded from besides the plugin itself, e.g. a
     * script. Call it from create, or later from any hook, thread or
     * request child (a module first loaded while serving). The master
     * records the file's identity when the worker reports ready (later:
     * when the call reaches it); a reload restarts the listener when any
     * named file changed (replaced, edited, removed), as it does when the
     * plugin file changes. Returns 0, or -1 when the path is not absolute
     * or cannot be reported. */
    int32_t (*depends_on)(const char *path, size_t len);

    /* ---- ABI 1.2: check `size` before calling these ---- */
    /* Call from create: this instance serves the listening socket itself,
     * as inetd's `wait` services do. From then on the host never accepts
     * or receives on it: each time it becomes readable the host runs one
     * request whose `fd` is the listening socket (client "", no client
     * address, no data; verify_request and the access control are not
     * run), and polls the socket again only after that request ended.
     * One such request at a time, whatever the mixin. Returns 0, or -1
     * outside create. */
    int32_t (*take_listener)(void);
    /* Attach `len` bytes of UTF-8 text (copied; at most 200 bytes are
     * kept) to `req`: the request's access log line carries it (field
     * DETAIL), e.g. a program's exit status and run time. Works in every
     * mixin, also in a forked request child. */
    void (*set_detail)(sockhost_request *req, const char *msg, size_t len);
    /* Call from handle in a fork-mode request child that is about to
     * execve a program in its own place (inetd's way: no second process).
     * Returns 0 when the host agrees: it then takes this process's exit
     * status as the program's (0: ok; any other status or a signal: a
     * failed request) and puts it, with the pid and run time, in the
     * access log line. Returns -1 anywhere else (thread or sync mixin):
     * spawn the program and wait for it instead. If execve then fails,
     * return a failure from handle as usual. */
    int32_t (*exec_request)(sockhost_request *req);
    /* Call from setup or handle when the plugin's own check, run inside the
     * request because it needs the connection itself (an embedded runtime's
     * verify_request that reads the socket), refused the client: the host
     * then counts the request as refused with reason "verify_request"
     * (sockhost_requests_refused_total), not as a request served or failed,
     * and writes no access log line for it. Close nothing: return from the
     * hook as usual (SOCKHOST_OK). Works in every mixin, also in a forked
     * request child. Returns 0, or -1 for a request the host does not know. */
    int32_t (*refuse_request)(sockhost_request *req);
} sockhost_host;

/* ---- plugin functions ------------------------------------------------- */

/* Filled by the plugin in sockhost_plugin_init. The host zeroes it and sets
 * `size` first; the plugin must not write past `size` bytes. NULL means
 * "not provided" for every optional function. */
typedef struct sockhost_plugin {
    uint32_t size;  /* set by the host: sizeof(sockhost_plugin) as it knows it */
    uint32_t flags; /* SOCKHOST_PLUGIN_* bits; zero for none */
    const char *name;    /* static, NUL-terminated: the plugin's name */
    const char *version; /* static, NUL-terminated: the plugin's version */

    /* Required. Build the instance that serves `listener`; store it in
     * *instance. Return SOCKHOST_OK, or anything else to refuse: the worker
     * then logs `*error` if the plugin set it (a NUL-terminated message the
     * plugin owns, valid until its next call; the host copies it at once) and
     * exits, so the listener does not start or a reload rolls back. */
    int32_t (*create)(const sockhost_listener *listener, void **instance,
                      const char **error);
    /* Optional. Free the instance, on graceful stop. Not called in a forked
     * request child. */
    void (*destroy)(void *instance);

    /* Optional. Prepare for one request (StreamRequestHandler.setup). A
     * failure skips handle and finish. */
    int32_t (*setup)(void *instance, sockhost_request *req);
    /* Required. Serve one request (BaseRequestHandler.handle). A failure is
     * reported through handle_error; finish still runs. */
    int32_t (*handle)(void *instance, sockhost_request *req);
    /* Optional. Clean up after one request; runs whenever setup succeeded. */
    int32_t (*finish)(void *instance, sockhost_request *req);

    /* Optional. Veto a client before dispatch (socketserver's
     * verify_request). Runs in the worker's main loop before any fork or
     * thread, so keep it cheap. Only socktype, family, client, client_addr,
     * client_addr_len, data and data_len are set; fd is -1. Return SOCKHOST_OK
     * to serve the request, anything else to drop it. */
    int32_t (*verify_request)(void *instance, const sockhost_request *req);
    /* Optional. Called after `timeout` seconds without a request. */
    void (*handle_timeout)(void *instance);
    /* Optional. Called on every turn of the serve loop. */
    void (*service_actions)(void *instance);
    /* Optional. Called when setup, handle or finish failed, with the
     * message (UTF-8, not NUL-terminated) the host logged. The connection is
     * still open. */
    void (*handle_error)(void *instance, sockhost_request *req,
                         const char *msg, size_t len);

    /* ---- ABI 1.1: read only from a plugin whose record says minor >= 1 ----
     * Optional. Called in fork mode around the host's fork of each request
     * child, on the worker's main thread (the only thread): before_fork just
     * before fork(); then after_fork_parent in the worker, or
     * after_fork_child in the child before its setup. Every before_fork is
     * followed by exactly one of the two, also when fork fails (then in the
     * worker, as after_fork_parent). An embedded runtime takes and releases
     * its locks here (Python's PyOS_BeforeFork and friends). */
    void (*before_fork)(void *instance);
    void (*after_fork_parent)(void *instance);
    void (*after_fork_child)(void *instance);
} sockhost_plugin;

/* The entry function every plugin exports. `host` is static (keep it);
 * `plugin` is zeroed with its size set. Return SOCKHOST_OK. */
typedef int32_t (*sockhost_plugin_init_fn)(const sockhost_host *host,
                                           sockhost_plugin *plugin);

#ifdef __cplusplus
}
#endif

#endif /* SOCKHOST_H */
