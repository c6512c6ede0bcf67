/*
 * scratchd socket-activation helper (N-API, C, no threads).
 *
 * uWebSockets.js cannot listen on a socket it did not create, but it can
 * adopt an *accepted* connection (app.adoptSocket(fd)), after which uWS owns
 * and closes that fd. So this addon does the one thing uWS cannot: watch the
 * listening socket systemd passed us (fd 3), accept connections, and hand the
 * accepted fds to JS, which gives each to uWS.
 *
 *   watch(fd, onAccept[, batch]) -> handle  start accepting on listening
 *                                   socket `fd`, at most `batch` (1..64, default
 *                                   64) per wake-up; onAccept(fds, err?)
 *   unwatch(handle)                 stop accepting; never closes `fd`
 *   listen(host, port) -> [fd, port]  a listening socket of our own, for
 *                                   watch(): uWS's own accept loop spins at
 *                                   full CPU when out of fds (it retries a
 *                                   readable socket at once), ours backs off
 *   notifyOpen(socketPath) -> 0 | errno-name   open the sd_notify socket
 *   notify(state) -> 0 | errno-name            sd_notify(3) datagram on it
 *
 * Everything runs on Node's libuv loop: a uv_poll_t on the listening fd (level
 * triggered), non-blocking accept4(). The listening fd itself is never closed
 * here: systemd (and the next scratchd after a restart) keep using it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

/* At most this many accepts per wake-up; the poll is level triggered, so the
 * rest wait for the next loop turn and requests in flight are not starved.
 * Serving threads that share one listening socket ask for fewer, so one
 * thread's wake-up does not take every connection of a burst. */
#define ACCEPT_BATCH 64
/* Pause after EMFILE/ENFILE/ENOBUFS/ENOMEM instead of spinning on a socket
 * that stays readable; the kernel keeps the connections queued meanwhile. */
#define BACKOFF_MS 100

typedef struct {
  uv_poll_t poll;
  uv_timer_t timer;     /* back-off timer */
  napi_env env;
  napi_ref callback;    /* onAccept */
  napi_async_context async;
  int fd;               /* listening socket, not ours to close */
  int refs;             /* 2 libuv handles + the JS External; free() at 0 */
  int stopped;
  int batch;            /* accepts per wake-up, 1..ACCEPT_BATCH */
} watcher_t;

#define CHECK(env, call)                                                       \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error((env), NULL, "activation: " #call " failed");          \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* "EMFILE", "ECONNREFUSED", ... (glibc >= 2.32, we need >= 2.38 anyway). */
static const char *errno_name(int e) {
  const char *name = strerrorname_np(e);
  return name ? name : "EIO";
}

/* Call onAccept(fds, err) from a libuv callback: handle scope + make_callback
 * so that microtasks run and a throw becomes an uncaught exception. */
static void deliver(watcher_t *w, const int *fds, int n, const char *err) {
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, recv, argv[2], result;
  int i;
  if (napi_open_handle_scope(env, &scope) != napi_ok) goto leak;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv); /* make_callback needs an object receiver */
  napi_create_array_with_length(env, (size_t) n, &argv[0]);
  for (i = 0; i < n; i++) {
    napi_value v;
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, argv[0], (uint32_t) i, v);
  }
  if (err) napi_create_string_utf8(env, err, NAPI_AUTO_LENGTH, &argv[1]);
  else napi_get_undefined(env, &argv[1]);
  if (napi_make_callback(env, w->async, recv, cb, 2, argv, &result) != napi_ok) {
    napi_value ex;
    if (napi_get_and_clear_last_exception(env, &ex) == napi_ok)
      napi_fatal_exception(env, ex);
  }
  napi_close_handle_scope(env, scope);
  return;
leak:
  /* Cannot reach JS at all: do not leak the connections. */
  for (i = 0; i < n; i++) close(fds[i]);
}

static void on_readable(uv_poll_t *handle, int status, int events);

static void on_timer(uv_timer_t *t) {
  watcher_t *w = t->data;
  int r;
  if (w->stopped) return;
  r = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (r != 0) {
    /* Never stop accepting for good: say so and try again after a pause. */
    uv_timer_start(&w->timer, on_timer, BACKOFF_MS, 0);
    deliver(w, NULL, 0, uv_err_name(r));
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  watcher_t *w = handle->data;
  int fds[ACCEPT_BATCH], n = 0, err = 0;
  (void) events;
  if (w->stopped) return;
  if (status < 0) err = -status; /* poll error: treat like a transient one */
  while (!err && n < w->batch) {
    int c = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) { fds[n++] = c; continue; }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;    /* queue empty */
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
        errno == EPERM) continue;   /* that one connection is gone: next */
    err = errno; /* EMFILE, ENFILE, ENOBUFS, ENOMEM or unexpected */
  }
  if (err) {
    /* Stop polling for a while; the connections stay in the kernel backlog. */
    uv_poll_stop(&w->poll);
    uv_timer_start(&w->timer, on_timer, BACKOFF_MS, 0);
  }
  if (n || err) deliver(w, fds, n, err ? errno_name(err) : NULL);
}

static void release(watcher_t *w) {
  if (--w->refs == 0) free(w);
}

static void on_close(uv_handle_t *h) { release(h->data); }

/* The External was garbage collected: JS can no longer call unwatch. */
static void on_finalize(napi_env env, void *data, void *hint) {
  (void) env; (void) hint;
  release(data);
}

/* watch(fd: number, onAccept: Function, batch?: number) -> External */
static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, ext;
  int32_t fd, batch = ACCEPT_BATCH;
  int type = 0, listening = 0, flags;
  socklen_t len = sizeof(int);
  uv_loop_t *loop;
  watcher_t *w;

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      (argc > 2 && (napi_get_value_int32(env, argv[2], &batch) != napi_ok ||
                    batch < 1 || batch > ACCEPT_BATCH))) {
    napi_throw_type_error(env, NULL, "watch(fd, onAccept[, batch 1..64])");
    return NULL;
  }
  /* Refuse anything but a listening stream socket: a wrong fd (say, a
   * datagram socket from a misconfigured unit) must fail loudly at start. */
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
      (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) != 0 ||
      !listening) {
    napi_throw_error(env, "ENOTSOCK", "fd is not a listening stream socket");
    return NULL;
  }
  /* Non-blocking (shared with systemd's copy of the file description; the
   * next process sets it too) and close-on-exec (no child inherits it). */
  flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    napi_throw_error(env, NULL, "fcntl on listening fd failed");
    return NULL;
  }
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  w->env = env;
  w->fd = fd;
  w->batch = batch;
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "scratchd:accept", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok ||
      uv_poll_init(loop, &w->poll, fd) != 0) {
    if (w->async) napi_async_destroy(env, w->async);
    if (w->callback) napi_delete_reference(env, w->callback);
    free(w);
    napi_throw_error(env, NULL, "cannot watch the listening fd");
    return NULL;
  }
  uv_timer_init(loop, &w->timer);
  w->poll.data = w->timer.data = w;
  w->refs = 2;
  /* Both stay referenced: during a back-off the timer is what keeps the
   * process alive (the poll is stopped and uWS may have no socket left). */
  if (uv_poll_start(&w->poll, UV_READABLE, on_readable) != 0) {
    w->stopped = 1;
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    uv_close((uv_handle_t *) &w->poll, on_close);
    uv_close((uv_handle_t *) &w->timer, on_close);
    napi_throw_error(env, NULL, "cannot poll the listening fd");
    return NULL;
  }
  CHECK(env, napi_create_external(env, w, on_finalize, NULL, &ext));
  w->refs++;
  return ext;
}

/* unwatch(handle): stop accepting; idempotent. The listening fd stays open. */
static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  watcher_t *w;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **) &w) != napi_ok || !w) {
    napi_throw_type_error(env, NULL, "unwatch(handle)");
    return NULL;
  }
  if (w->stopped) return NULL;
  w->stopped = 1;
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->async);
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->timer);
  /* uv_close on a uv_poll_t does not close the fd. w stays allocated until
   * the External is collected too, so a second unwatch() is harmless. */
  uv_close((uv_handle_t *) &w->poll, on_close);
  uv_close((uv_handle_t *) &w->timer, on_close);
  return NULL;
}

/* listen(host, port) -> [fd, port]: what uSockets' listen does with
 * LIBUS_LISTEN_EXCLUSIVE_PORT (IPv6 addresses first, dual stack,
 * SO_REUSEADDR so a restart binds beside connections in TIME_WAIT, never
 * SO_REUSEPORT so a second instance fails instead of sharing the port), but
 * the socket is ours to accept on with watch(). getaddrinfo blocks: start-up
 * only, as in uSockets. Throws an Error whose code is the errno name. */
static napi_value listen_on(napi_env env, napi_callback_info info) {
  size_t argc = 2, hlen;
  napi_value argv[2], result, v;
  char host[256], service[8], msg[320];
  int32_t port;
  struct addrinfo hints, *res, *a;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  int fd = -1, err = EADDRNOTAVAIL, pass, rc, one = 1, zero = 0;

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hlen) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "listen(host, port)");
    return NULL;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_PASSIVE;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(service, sizeof service, "%d", (int) port);
  rc = getaddrinfo(hlen > 0 ? host : NULL, service, &hints, &res);
  if (rc != 0) {
    snprintf(msg, sizeof msg, "cannot resolve %s: %s", host, gai_strerror(rc));
    napi_throw_error(env, "EAI", msg);
    return NULL;
  }
  for (pass = 0; pass < 2 && fd < 0; pass++) {
    for (a = res; a != NULL && fd < 0; a = a->ai_next) {
      if ((a->ai_family == AF_INET6) != (pass == 0)) continue;
      fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) { err = errno; continue; }
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (a->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        err = errno;
        close(fd);
        fd = -1;
      }
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    napi_throw_error(env, errno_name(err), strerror(err));
    return NULL;
  }
  if (getsockname(fd, (struct sockaddr *) &ss, &sslen) == 0)
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                          : ((struct sockaddr_in *) &ss)->sin_port);
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_create_int32(env, fd, &v));
  CHECK(env, napi_set_element(env, result, 0, v));
  CHECK(env, napi_create_int32(env, port, &v));
  CHECK(env, napi_set_element(env, result, 1, v));
  return result;
}

/* The sd_notify socket and address, set once at start by notifyOpen(). A
 * socket per message (as libsystemd opens) cannot be had once fds run out,
 * which is exactly when READY=1 after a reload or STOPPING=1 matter. Not
 * connect()ed: each sendto() finds the path again, so a systemd that re-bound
 * its socket (daemon-reexec) still gets our messages. */
static int notify_fd = -1;
static struct sockaddr_un notify_sa;
static socklen_t notify_salen;

/* notifyOpen(socketPath) -> 0 or an errno name. "/path" or "@abstract". */
static napi_value notify_open(napi_env env, napi_callback_info info) {
  size_t argc = 1, plen;
  napi_value argv[1], result;
  char path[sizeof(((struct sockaddr_un *) 0)->sun_path) + 1];
  int s, err = 0;

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok) {
    napi_throw_type_error(env, NULL, "notifyOpen(socketPath)");
    return NULL;
  }
  if (plen < 2 || plen >= sizeof notify_sa.sun_path || (path[0] != '/' && path[0] != '@')) {
    err = EINVAL; /* also rejects vsock: addresses, which we do not need */
  } else if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
    err = errno;
  } else {
    if (notify_fd >= 0) close(notify_fd);
    notify_fd = s;
    memset(&notify_sa, 0, sizeof notify_sa);
    notify_sa.sun_family = AF_UNIX;
    memcpy(notify_sa.sun_path, path, plen);
    if (path[0] == '@') notify_sa.sun_path[0] = '\0'; /* abstract namespace */
    notify_salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen +
                                (path[0] == '/' ? 1 : 0));
  }
  if (err) CHECK(env, napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &result));
  else CHECK(env, napi_create_int32(env, 0, &result));
  return result;
}

/* notify(state) -> 0 or an errno name (EBADF before notifyOpen). One
 * datagram; non-blocking: never stalls the loop, systemd reads these at once. */
static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 1, slen;
  napi_value argv[1], result;
  char state[4096];
  int err = 0;

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], state, sizeof state, &slen) != napi_ok) {
    napi_throw_type_error(env, NULL, "notify(state)");
    return NULL;
  }
  if (notify_fd < 0) err = EBADF;
  else if (sendto(notify_fd, state, slen, MSG_NOSIGNAL, (struct sockaddr *) &notify_sa, notify_salen) < 0)
    err = errno;
  if (err) CHECK(env, napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &result));
  else CHECK(env, napi_create_int32(env, 0, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"watch", NULL, watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"listen", NULL, listen_on, NULL, NULL, NULL, napi_enumerable, NULL},
    {"notifyOpen", NULL, notify_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"notify", NULL, notify, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
