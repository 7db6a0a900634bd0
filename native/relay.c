/*
 * glow_relay: the native data path of the proxy's plain TCP listeners (src/proxy/native-relay.ts loads it).
 *
 * It runs on the libuv loop that Node already runs (no thread of its own) and owns the bytes only: accepting,
 * the connect to an upstream, and the relay both ways with backpressure and half-close. Every decision stays in
 * TypeScript: which upstream to connect to, a retry after a failed connect, a refusal, an abort. Per connection,
 * JavaScript hears of it three times (accepted, connected or connect failed, closed), and those events are
 * batched: they are queued here and handed over once per loop iteration (the check phase), in one call, through a
 * Float64Array shared with JavaScript. Nothing is called per chunk.
 *
 * The relay, per direction (client to upstream, upstream to client): a read lands in one static buffer and is
 * written at once with uv_try_write. What the kernel does not take is copied once, written with uv_write, and
 * reading from the source stops until that write completes: at most one write is in flight per direction, so a
 * slow reader holds at most one read's worth of memory (64 KiB), and an idle connection holds no buffer at all.
 * An end of stream is passed on with a shutdown once the pending write is done; the connection closes when both
 * directions are shut. A read error (a reset) on one side resets the other; a write error does the same.
 *
 * Timers: a connect has a timer of its own (the route's connect timeout). Idle timeouts are kept by one coarse
 * sweeper (every SWEEP_MS) over the relaying connections, not by a timer per connection.
 *
 * Connections are named to JavaScript by an id that carries a slot and its generation, so that a call about a
 * connection that has closed meanwhile finds nothing rather than its slot's next tenant.
 */
#include <node_api.h>
#include <uv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 65536
#define KEEPALIVE_S 10 /* TCP keep-alive on upstream connections, as UPSTREAM_KEEPALIVE_MS in src/proxy/connector.ts */
#define SWEEP_MS 100
#define SLOT_BITS 21
#define SLOT_LIMIT (1u << SLOT_BITS)
#define EV_FIELDS 4     /* kind, id, a, b */
#define EV_BATCH 2048   /* events per call into JavaScript (the shared array's size) */

enum { EV_ACCEPT = 1, EV_CONNECTED = 2, EV_CONNECT_FAILED = 3, EV_CLOSED = 4 };
enum { ST_WAITING, ST_CONNECTING, ST_RELAYING, ST_CLOSING };

typedef struct conn conn_t;

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t req;
  conn_t *c;
} upstream_t;

typedef struct {
  uv_write_t wreq;
  uv_shutdown_t sreq;
  char *pending;
  size_t pending_len;
  int writing, eof, shut;
} dir_t;

struct conn {
  uv_tcp_t client;
  uv_timer_t timer;
  upstream_t *up;
  dir_t c2u, u2c;
  conn_t *prev, *next; /* the sweeper's list (relaying connections with an idle timeout) */
  double id;
  double listener;
  uint64_t last, idle_ms;
  double bytes_in, bytes_out; /* read from the client, written to the client */
  uint32_t slot;
  int state, handles, listed;
};

typedef struct {
  uv_tcp_t tcp;
  double id;
} listener_t;

static napi_env g_env;
static uv_loop_t *g_loop;
static napi_ref g_callback, g_events_ref, g_resource;
static napi_async_context g_async;
static double *g_events;
static uv_check_t g_check;
static uv_idle_t g_idle;
static uv_timer_t g_sweeper;
static int g_sweeping;
static char g_buf[BUF_SIZE];

static double *g_queue;       /* events not yet handed over */
static size_t g_queued, g_queue_cap;

static conn_t **g_slots;
static uint32_t *g_gens;
static uint32_t *g_free;
static uint32_t g_nslots, g_nfree, g_open;
static conn_t *g_list;

/* The open listeners, in a slot array; their ids are never reused (an accept still queued for a closed listener
   must not be taken for one of a listener opened since). */
static listener_t **g_listeners;
static uint32_t g_nlisteners;
static double g_next_listener = 1;

/* --- events ------------------------------------------------------------------------------------------------ */

static void idle_noop(uv_idle_t *h) { (void)h; }

static void emit(int kind, double id, double a, double b) {
  if (g_queued == g_queue_cap) {
    size_t cap = g_queue_cap ? g_queue_cap * 2 : EV_BATCH;
    double *q = realloc(g_queue, cap * EV_FIELDS * sizeof(double));
    if (!q) abort();
    g_queue = q;
    g_queue_cap = cap;
  }
  double *e = g_queue + g_queued * EV_FIELDS;
  e[0] = kind;
  e[1] = id;
  e[2] = a;
  e[3] = b;
  if (g_queued++ == 0) uv_idle_start(&g_idle, idle_noop); /* the loop must not block before the check phase */
}

static void flush(uv_check_t *h) {
  (void)h;
  if (g_queued == 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  napi_value cb, recv, arg;
  napi_get_reference_value(g_env, g_callback, &cb);
  napi_get_reference_value(g_env, g_resource, &recv);
  size_t done = 0;
  /* JavaScript may queue more events while it handles these (a failed connect): they are delivered in turn. */
  while (done < g_queued) {
    size_t n = g_queued - done;
    if (n > EV_BATCH) n = EV_BATCH;
    memcpy(g_events, g_queue + done * EV_FIELDS, n * EV_FIELDS * sizeof(double));
    done += n;
    napi_create_uint32(g_env, (uint32_t)n, &arg);
    napi_value result;
    if (napi_make_callback(g_env, g_async, recv, cb, 1, &arg, &result) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(g_env, &err);
      napi_fatal_exception(g_env, err);
    }
  }
  g_queued = 0;
  uv_idle_stop(&g_idle);
  /* A burst (thousands of connections closing at once) grew the queue: it does not keep that memory. */
  if (g_queue_cap > EV_BATCH) {
    free(g_queue);
    g_queue = NULL;
    g_queue_cap = 0;
  }
  napi_close_handle_scope(g_env, scope);
}

/* --- connections ------------------------------------------------------------------------------------------- */

static conn_t *conn_new(double listener) {
  uint32_t slot;
  if (g_nfree) {
    slot = g_free[--g_nfree];
  } else {
    if (g_nslots == SLOT_LIMIT) return NULL;
    if ((g_nslots & (g_nslots - 1)) == 0) { /* grow at powers of two */
      uint32_t cap = g_nslots ? g_nslots * 2 : 256;
      conn_t **s = realloc(g_slots, cap * sizeof *s);
      uint32_t *g = realloc(g_gens, cap * sizeof *g);
      uint32_t *f = realloc(g_free, cap * sizeof *f);
      if (!s || !g || !f) abort();
      g_slots = s;
      g_gens = g;
      g_free = f;
    }
    slot = g_nslots++;
    g_gens[slot] = 0;
  }
  conn_t *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->slot = slot;
  c->id = (double)g_gens[slot] * (double)SLOT_LIMIT + slot;
  c->listener = listener;
  g_slots[slot] = c;
  g_open++;
  return c;
}

static conn_t *conn_find(double id) {
  if (!(id >= 0)) return NULL;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v & (SLOT_LIMIT - 1));
  if (slot >= g_nslots) return NULL;
  conn_t *c = g_slots[slot];
  return c && c->id == id ? c : NULL;
}

static void unlist(conn_t *c) {
  if (!c->listed) return;
  if (c->prev) c->prev->next = c->next;
  else g_list = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->listed = 0;
}

static void handle_closed(conn_t *c) {
  if (--c->handles > 0) return;
  emit(EV_CLOSED, c->id, c->bytes_in, c->bytes_out);
  unlist(c);
  g_slots[c->slot] = NULL;
  g_gens[c->slot]++;
  g_free[g_nfree++] = c->slot;
  g_open--;
  free(c->c2u.pending);
  free(c->u2c.pending);
  free(c);
}

static void client_closed(uv_handle_t *h) { handle_closed(h->data); }
/* A handle that is the first member of its allocation (a listener, a connection refused for want of slots). */
static void free_closed(uv_handle_t *h) { free(h); }
static void timer_closed(uv_handle_t *h) { handle_closed(h->data); }

static void upstream_closed(uv_handle_t *h) {
  upstream_t *u = (upstream_t *)h; /* tcp is its first member */
  conn_t *c = u->c;
  free(u);
  handle_closed(c);
}

static void close_stream(uv_tcp_t *t, int reset, uv_close_cb cb) {
  if (uv_is_closing((uv_handle_t *)t)) return;
  /* A reset is refused while a shutdown is pending (UV_EINVAL; once it completed, libuv resets): then it is a
     plain close. */
  if (reset && uv_tcp_close_reset(t, cb) == 0) return;
  uv_close((uv_handle_t *)t, cb);
}

/* Ends the connection: both sockets and the timer close; the last close callback reports it and frees it. */
static void conn_close(conn_t *c, int reset_client, int reset_up) {
  if (c->state == ST_CLOSING) return;
  c->state = ST_CLOSING;
  unlist(c);
  uv_close((uv_handle_t *)&c->timer, timer_closed);
  close_stream(&c->client, reset_client, client_closed);
  if (c->up) close_stream(&c->up->tcp, reset_up, upstream_closed);
}

/* --- the relay --------------------------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = g_buf;
  buf->len = BUF_SIZE;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static uv_stream_t *client_of(conn_t *c) { return (uv_stream_t *)&c->client; }
static uv_stream_t *up_of(conn_t *c) { return (uv_stream_t *)&c->up->tcp; }

static void shutdown_cb(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (status == UV_ECANCELED || c->state == ST_CLOSING) return;
  dir_t *d = req == &c->c2u.sreq ? &c->c2u : &c->u2c;
  d->shut = 1;
  if (status < 0) conn_close(c, d == &c->c2u, d == &c->u2c);
  else if (c->c2u.shut && c->u2c.shut) conn_close(c, 0, 0);
}

static void pass_eof(conn_t *c, dir_t *d) {
  uv_stream_t *dst = d == &c->c2u ? up_of(c) : client_of(c);
  d->sreq.data = c;
  if (uv_shutdown(&d->sreq, dst, shutdown_cb) < 0) conn_close(c, d == &c->c2u, d == &c->u2c);
}

static void write_cb(uv_write_t *req, int status) {
  conn_t *c = req->data;
  dir_t *d = req == &c->c2u.wreq ? &c->c2u : &c->u2c;
  size_t len = d->pending_len;
  free(d->pending);
  d->pending = NULL;
  d->pending_len = 0;
  d->writing = 0;
  if (status == UV_ECANCELED || c->state == ST_CLOSING) return;
  /* A failed write to one side: the other side is reset. */
  if (status < 0) return conn_close(c, d == &c->c2u, d == &c->u2c);
  /* A completed write is traffic too (as for the portable path's socket timeout): a slow reader that takes the
     last pending bytes long after the last read is not idle. */
  c->last = uv_now(g_loop);
  if (d == &c->u2c) c->bytes_out += (double)len;
  if (d->eof) return pass_eof(c, d);
  uv_stream_t *src = d == &c->c2u ? client_of(c) : up_of(c);
  if (uv_read_start(src, alloc_cb, read_cb) < 0) conn_close(c, 1, 1);
}

static void relay(conn_t *c, dir_t *d, uv_stream_t *src, uv_stream_t *dst, const char *base, size_t n) {
  uv_buf_t b = uv_buf_init((char *)base, (unsigned)n);
  int r = uv_try_write(dst, &b, 1);
  if (r == (int)n) {
    if (d == &c->u2c) c->bytes_out += (double)n;
    return;
  }
  if (r < 0 && r != UV_EAGAIN) return conn_close(c, d == &c->c2u, d == &c->u2c);
  if (r < 0) r = 0;
  if (d == &c->u2c) c->bytes_out += (double)r;
  size_t rest = n - (size_t)r;
  d->pending = malloc(rest);
  if (!d->pending) abort();
  memcpy(d->pending, base + r, rest);
  d->pending_len = rest;
  d->writing = 1;
  d->wreq.data = c;
  uv_read_stop(src);
  b = uv_buf_init(d->pending, (unsigned)rest);
  if (uv_write(&d->wreq, dst, &b, 1, write_cb) < 0) {
    free(d->pending);
    d->pending = NULL;
    d->writing = 0;
    conn_close(c, d == &c->c2u, d == &c->u2c);
  }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (c->state != ST_RELAYING) return;
  int from_client = s == client_of(c);
  dir_t *d = from_client ? &c->c2u : &c->u2c;
  if (nread > 0) {
    c->last = uv_now(g_loop);
    if (from_client) c->bytes_in += (double)nread;
    relay(c, d, s, from_client ? up_of(c) : client_of(c), buf->base, (size_t)nread);
  } else if (nread == UV_EOF) {
    d->eof = 1;
    uv_read_stop(s);
    if (!d->writing) pass_eof(c, d);
  } else if (nread < 0) {
    /* A reset (or another read error) on one side is passed on as a reset on the other. */
    conn_close(c, !from_client, from_client);
  }
}

/* --- connecting -------------------------------------------------------------------------------------------- */

static void drop_attempt(conn_t *c) {
  upstream_t *u = c->up;
  c->up = NULL;
  c->state = ST_WAITING;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&u->tcp, upstream_closed); /* its connect callback then sees UV_ECANCELED */
}

static void sweep(uv_timer_t *t) {
  (void)t;
  uint64_t now = uv_now(g_loop);
  for (conn_t *c = g_list, *next; c; c = next) {
    next = c->next;
    if (now - c->last >= c->idle_ms) conn_close(c, 0, 0);
  }
  if (!g_list) {
    uv_timer_stop(&g_sweeper);
    g_sweeping = 0;
  }
}

static void connect_cb(uv_connect_t *req, int status) {
  upstream_t *u = req->data;
  conn_t *c = u->c;
  if (status == UV_ECANCELED || c->state != ST_CONNECTING || c->up != u) return;
  if (status < 0) {
    drop_attempt(c);
    emit(EV_CONNECT_FAILED, c->id, status, 0);
    return;
  }
  uv_timer_stop(&c->timer);
  c->state = ST_RELAYING;
  uv_tcp_nodelay(&u->tcp, 1);
  uv_tcp_keepalive(&u->tcp, 1, KEEPALIVE_S);
  c->last = uv_now(g_loop);
  if (c->idle_ms > 0) {
    c->next = g_list;
    if (g_list) g_list->prev = c;
    g_list = c;
    c->listed = 1;
    if (!g_sweeping) {
      uv_timer_start(&g_sweeper, sweep, SWEEP_MS, SWEEP_MS);
      g_sweeping = 1;
    }
  }
  emit(EV_CONNECTED, c->id, 0, 0);
  if (uv_read_start(client_of(c), alloc_cb, read_cb) < 0 || uv_read_start(up_of(c), alloc_cb, read_cb) < 0)
    conn_close(c, 1, 1);
}

static void connect_timeout(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state != ST_CONNECTING) return;
  drop_attempt(c);
  emit(EV_CONNECT_FAILED, c->id, UV_ETIMEDOUT, 1);
}

static void on_connection(uv_stream_t *server, int status) {
  listener_t *l = (listener_t *)server;
  if (status < 0) return;
  conn_t *c = conn_new(l->id);
  if (!c) {
    /* More connections than slots: take it off the queue and close it. */
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) abort();
    uv_tcp_init(g_loop, t);
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, free_closed);
    return;
  }
  uv_tcp_init(g_loop, &c->client);
  uv_timer_init(g_loop, &c->timer);
  c->client.data = c;
  c->timer.data = c;
  c->handles = 2;
  if (uv_accept(server, client_of(c)) < 0) {
    conn_close(c, 0, 0);
    c->id = -1; /* closed before JavaScript heard of it: its close is still reported, and ignored */
    return;
  }
  uv_tcp_nodelay(&c->client, 1);
  emit(EV_ACCEPT, c->id, l->id, 0);
}

/* --- the functions JavaScript calls ------------------------------------------------------------------------ */

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value throw_uv(napi_env env, int err) {
  napi_throw_error(env, uv_err_name(err), uv_strerror(err));
  return NULL;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return 0;
  }
  return 1;
}

static double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

static int addr_of(napi_env env, napi_value v, int port, struct sockaddr_storage *ss) {
  char host[64];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, host, sizeof host, &len) != napi_ok) return UV_EINVAL;
  if (strchr(host, ':')) return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
  return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

/* init(onEvents, events: Float64Array): the one callback and the array it reads; returns the batch size. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  if (g_env) {
    napi_throw_error(env, "EALREADY", "the native relay is already initialised in this process");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array ||
      length < EV_BATCH * EV_FIELDS) {
    napi_throw_type_error(env, NULL, "events must be a Float64Array of batch × 4");
    return NULL;
  }
  g_env = env;
  napi_get_uv_event_loop(env, &g_loop);
  napi_create_reference(env, argv[0], 1, &g_callback);
  napi_create_reference(env, argv[1], 1, &g_events_ref);
  g_events = data;
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &g_resource);
  napi_create_string_utf8(env, "glow_relay", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &g_async);
  uv_check_init(g_loop, &g_check);
  uv_check_start(&g_check, flush);
  uv_unref((uv_handle_t *)&g_check);
  uv_idle_init(g_loop, &g_idle);
  uv_unref((uv_handle_t *)&g_idle);
  uv_timer_init(g_loop, &g_sweeper);
  uv_unref((uv_handle_t *)&g_sweeper);
  napi_value n;
  napi_create_uint32(env, EV_BATCH, &n);
  return n;
}

/* listen(host, port, backlog): a listener id; throws with the error's code (EADDRINUSE, EACCES...). */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  struct sockaddr_storage ss;
  int r = addr_of(env, argv[0], (int)num(env, argv[1]), &ss);
  if (r < 0) return throw_uv(env, r);
  listener_t *l = calloc(1, sizeof *l);
  if (!l) abort();
  uv_tcp_init(g_loop, &l->tcp);
  r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, (int)num(env, argv[2]), on_connection);
  if (r < 0) {
    uv_close((uv_handle_t *)&l->tcp, free_closed);
    return throw_uv(env, r);
  }
  uint32_t slot = 0;
  while (slot < g_nlisteners && g_listeners[slot]) slot++;
  if (slot == g_nlisteners) {
    listener_t **ls = realloc(g_listeners, (g_nlisteners + 1) * sizeof *ls);
    if (!ls) abort();
    g_listeners = ls;
    g_nlisteners++;
  }
  g_listeners[slot] = l;
  l->id = g_next_listener++;
  napi_value v;
  napi_create_double(env, l->id, &v);
  return v;
}

/* closeListener(id): stops accepting now (the port is free at once); its connections go on. */
static napi_value js_close_listener(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  double id = num(env, argv[0]);
  for (uint32_t slot = 0; slot < g_nlisteners; slot++) {
    listener_t *l = g_listeners[slot];
    if (!l || l->id != id) continue;
    g_listeners[slot] = NULL;
    uv_close((uv_handle_t *)&l->tcp, free_closed);
    break;
  }
  return undefined(env);
}

/*
 * connect(id, ip, port, connectTimeoutMs, idleTimeoutMs): one attempt for a waiting connection; its outcome comes
 * back as an event (connected, or connect failed with the error, a timeout flagged). False when the connection
 * is gone or not waiting.
 */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!args(env, info, 5, argv)) return NULL;
  conn_t *c = conn_find(num(env, argv[0]));
  napi_value ok;
  napi_get_boolean(env, c && c->state == ST_WAITING, &ok);
  if (!c || c->state != ST_WAITING) return ok;
  struct sockaddr_storage ss;
  int r = addr_of(env, argv[1], (int)num(env, argv[2]), &ss);
  double timeout = num(env, argv[3]);
  double idle = num(env, argv[4]);
  c->idle_ms = idle > 0 ? (uint64_t)idle : 0;
  upstream_t *u = calloc(1, sizeof *u);
  if (!u) abort();
  u->c = c;
  u->req.data = u;
  uv_tcp_init(g_loop, &u->tcp);
  u->tcp.data = c;
  c->handles++;
  c->up = u;
  c->state = ST_CONNECTING;
  if (r == 0) r = uv_tcp_connect(&u->req, &u->tcp, (struct sockaddr *)&ss, connect_cb);
  if (r < 0) {
    drop_attempt(c);
    emit(EV_CONNECT_FAILED, c->id, r, 0);
    return ok;
  }
  if (timeout > 0) uv_timer_start(&c->timer, connect_timeout, (uint64_t)timeout, 0);
  return ok;
}

static napi_value close_call(napi_env env, napi_callback_info info, int reset) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  conn_t *c = conn_find(num(env, argv[0]));
  if (c) conn_close(c, reset, reset);
  return undefined(env);
}

/* reset(id): ends a connection with a reset of both sides (a refusal: the client sees ECONNRESET). */
static napi_value js_reset(napi_env env, napi_callback_info info) { return close_call(env, info, 1); }

/* abort(id): ends a connection now, with a plain close of both sides. */
static napi_value js_abort(napi_env env, napi_callback_info info) { return close_call(env, info, 0); }

/* peer(id): the client's address, or null. */
static napi_value js_peer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  conn_t *c = conn_find(num(env, argv[0]));
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char name[64] = "";
  napi_value v;
  if (!c || uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &len) < 0) {
    napi_get_null(env, &v);
    return v;
  }
  if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, name, sizeof name);
  else uv_ip4_name((struct sockaddr_in *)&ss, name, sizeof name);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* open(): the connections that are not yet fully closed (for tests and status). */
static napi_value js_open(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_uint32(env, g_open, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_default, NULL},
      {"closeListener", NULL, js_close_listener, NULL, NULL, NULL, napi_default, NULL},
      {"connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL},
      {"reset", NULL, js_reset, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, js_abort, NULL, NULL, NULL, napi_default, NULL},
      {"peer", NULL, js_peer, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
