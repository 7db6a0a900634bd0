/*
 * glow_relay: the native data path of the proxy's plain listeners (src/proxy/native-relay.ts loads it).
 *
 * It runs on the libuv loop that Node already runs (no thread of its own) and owns the bytes only. Every decision
 * stays in TypeScript: which upstream to connect to, a retry after a failed connect, a refusal, an abort, and for
 * HTTP everything about requests. It holds two kinds of objects:
 *
 * - relay connections (a tcp port): accepting, the connect to an upstream, and the relay both ways with
 *   backpressure and half-close. Per connection, JavaScript hears of it three times (accepted, connected or connect
 *   failed, closed). Nothing is called per chunk.
 * - stream sockets (an http port's connections, and HTTP upstream connections): JavaScript reads and writes them;
 *   see "stream sockets" below. Those of an http port with certificates terminate TLS here; see "TLS".
 *
 * Events are batched: they are queued here and handed over once per loop iteration (the check phase), in one call,
 * through a Float64Array shared with JavaScript, and the bytes stream sockets read through a data area shared the
 * same way.
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
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 65536
#define KEEPALIVE_S 10 /* TCP keep-alive on upstream connections, as UPSTREAM_KEEPALIVE_MS in src/proxy/connector.ts */
#define SWEEP_MS 100
#define SLOT_BITS 21
#define SLOT_LIMIT (1u << SLOT_BITS)
#define EV_FIELDS 4     /* kind, id, a, b */
#define EV_BATCH 2048   /* events per call into JavaScript (the shared array's size) */
#define DATA_MIN (2u * BUF_SIZE) /* the least data area init() takes */

enum { EV_ACCEPT = 1, EV_CONNECTED = 2, EV_CONNECT_FAILED = 3, EV_CLOSED = 4 };
/* A stream socket's events: connected, bytes read (a: their place in the batch's data), end of stream, written
   out after a write that returned false, an error (a: the negative errno; the close follows), idle, closed. */
enum { EV_S_CONNECTED = 5, EV_S_DATA = 6, EV_S_EOF = 7, EV_S_DRAIN = 8, EV_S_ERROR = 9, EV_S_TIMEOUT = 10, EV_S_CLOSED = 11 };
/* A TLS socket's: the client's hello came (a, b: the server name's place in the data area; b = 0: none), and the
   handshake is done (a: the protocol version, 0x0303 for TLS 1.2, 0x0304 for TLS 1.3). */
enum { EV_T_HELLO = 12, EV_T_SECURE = 13 };
enum { ST_WAITING, ST_CONNECTING, ST_RELAYING, ST_CLOSING };

typedef struct conn conn_t;

/* A place in one of the sweeper's lists (relaying connections; stream sockets with an idle timeout): intrusive and
   doubly linked; OWNER gives back the object a link is a member of. */
typedef struct link {
  struct link *prev, *next;
  int listed;
} link_t;
#define OWNER(l, type, member) ((type *)((char *)(l) - offsetof(type, member)))

static void link_add(link_t **head, link_t *l) {
  if (l->listed) return;
  l->prev = NULL;
  l->next = *head;
  if (*head) (*head)->prev = l;
  *head = l;
  l->listed = 1;
}

static void link_del(link_t **head, link_t *l) {
  if (!l->listed) return;
  if (l->prev) l->prev->next = l->next;
  else *head = l->next;
  if (l->next) l->next->prev = l->prev;
  l->prev = l->next = NULL;
  l->listed = 0;
}

/* What the slot table holds: a relay connection or a stream socket, told apart by kind. */
enum { KIND_CONN = 1, KIND_SOCK = 2 };
typedef struct {
  double id;
  uint32_t slot;
  int kind;
} obj_t;

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
  obj_t o; /* first member */
  uv_tcp_t client;
  uv_timer_t timer;
  upstream_t *up;
  dir_t c2u, u2c;
  link_t sweep; /* the sweeper's list (relaying connections with an idle timeout) */
  double listener;
  uint64_t last, idle_ms;
  double bytes_in, bytes_out; /* read from the client, written to the client */
  int state, handles;
};

/* What a listener's connections are: relay connections (a tcp port), stream sockets (an http port), or stream
   sockets that terminate TLS (an http port with certificates). */
enum { L_RELAY = 0, L_STREAMS = 1, L_TLS = 2 };

typedef struct {
  uv_tcp_t tcp;
  double id;
  int kind;
} listener_t;

static napi_env g_env;
static uv_loop_t *g_loop;
static napi_ref g_callback, g_events_ref, g_data_ref, g_resource;
static napi_async_context g_async;
static double *g_events;
static uv_check_t g_check;
static uv_idle_t g_idle;
static uv_timer_t g_sweeper;
static int g_sweeping;
static char g_buf[BUF_SIZE];

static double *g_queue;       /* events not yet handed over */
static size_t g_queued, g_queue_cap;

static obj_t **g_slots;
static uint32_t *g_gens;
static uint32_t *g_free;
static uint32_t g_nslots, g_nfree, g_open;
static link_t *g_list, *g_slist; /* the sweeper's: relaying connections; stream sockets with an idle timeout */

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

/* What stream sockets read since the last batch: a Buffer JavaScript gave init() and reads the bytes of the batch's
   EV_S_DATA events from (a: offset, b: length), copying each out; a read goes straight into it. */
static char *g_data;
static size_t g_data_len, g_data_cap;

static void flush(uv_check_t *h) {
  (void)h;
  if (g_queued == 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  napi_value cb, recv, argv[1];
  napi_get_reference_value(g_env, g_callback, &cb);
  napi_get_reference_value(g_env, g_resource, &recv);
  size_t done = 0;
  /* JavaScript may queue more events while it handles these (a failed connect): they are delivered in turn. */
  while (done < g_queued) {
    size_t n = g_queued - done;
    if (n > EV_BATCH) n = EV_BATCH;
    napi_handle_scope inner;
    napi_open_handle_scope(g_env, &inner);
    memcpy(g_events, g_queue + done * EV_FIELDS, n * EV_FIELDS * sizeof(double));
    done += n;
    napi_create_uint32(g_env, (uint32_t)n, &argv[0]);
    napi_value result;
    if (napi_make_callback(g_env, g_async, recv, cb, 1, argv, &result) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(g_env, &err);
      napi_fatal_exception(g_env, err);
    }
    napi_close_handle_scope(g_env, inner);
  }
  g_queued = 0;
  g_data_len = 0;
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

/* A zeroed object of `size` bytes in a free slot, its id made of the slot and the slot's generation. */
static void *obj_new(size_t size, int kind) {
  uint32_t slot;
  if (g_nfree) {
    slot = g_free[--g_nfree];
  } else {
    if (g_nslots == SLOT_LIMIT) return NULL;
    if ((g_nslots & (g_nslots - 1)) == 0) { /* grow at powers of two */
      uint32_t cap = g_nslots ? g_nslots * 2 : 256;
      obj_t **s = realloc(g_slots, cap * sizeof *s);
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
  obj_t *o = calloc(1, size);
  if (!o) abort();
  o->slot = slot;
  o->kind = kind;
  o->id = (double)g_gens[slot] * (double)SLOT_LIMIT + slot;
  g_slots[slot] = o;
  g_open++;
  return o;
}

static void obj_free(obj_t *o) {
  g_slots[o->slot] = NULL;
  g_gens[o->slot]++;
  g_free[g_nfree++] = o->slot;
  g_open--;
  free(o);
}

static obj_t *obj_find(double id, int kind) {
  if (!(id >= 0)) return NULL;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v & (SLOT_LIMIT - 1));
  if (slot >= g_nslots) return NULL;
  obj_t *o = g_slots[slot];
  return o && o->id == id && o->kind == kind ? o : NULL;
}

static conn_t *conn_new(double listener) {
  conn_t *c = obj_new(sizeof *c, KIND_CONN);
  if (c) c->listener = listener;
  return c;
}

static conn_t *conn_find(double id) { return (conn_t *)obj_find(id, KIND_CONN); }

static void unlist(conn_t *c) { link_del(&g_list, &c->sweep); }

static void handle_closed(conn_t *c) {
  if (--c->handles > 0) return;
  emit(EV_CLOSED, c->o.id, c->bytes_in, c->bytes_out);
  unlist(c);
  free(c->c2u.pending);
  free(c->u2c.pending);
  obj_free(&c->o);
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

static void sweep_streams(uint64_t now);

static void sweep(uv_timer_t *t) {
  (void)t;
  uint64_t now = uv_now(g_loop);
  for (link_t *l = g_list, *next; l; l = next) {
    next = l->next;
    conn_t *c = OWNER(l, conn_t, sweep);
    if (now - c->last >= c->idle_ms) conn_close(c, 0, 0);
  }
  sweep_streams(now);
  if (!g_list && !g_slist) {
    uv_timer_stop(&g_sweeper);
    g_sweeping = 0;
  }
}

static void sweeper_start(void) {
  if (g_sweeping) return;
  uv_timer_start(&g_sweeper, sweep, SWEEP_MS, SWEEP_MS);
  g_sweeping = 1;
}

static void connect_cb(uv_connect_t *req, int status) {
  upstream_t *u = req->data;
  conn_t *c = u->c;
  if (status == UV_ECANCELED || c->state != ST_CONNECTING || c->up != u) return;
  if (status < 0) {
    drop_attempt(c);
    emit(EV_CONNECT_FAILED, c->o.id, status, 0);
    return;
  }
  uv_timer_stop(&c->timer);
  c->state = ST_RELAYING;
  uv_tcp_nodelay(&u->tcp, 1);
  uv_tcp_keepalive(&u->tcp, 1, KEEPALIVE_S);
  c->last = uv_now(g_loop);
  if (c->idle_ms > 0) {
    link_add(&g_list, &c->sweep);
    sweeper_start();
  }
  emit(EV_CONNECTED, c->o.id, 0, 0);
  if (uv_read_start(client_of(c), alloc_cb, read_cb) < 0 || uv_read_start(up_of(c), alloc_cb, read_cb) < 0)
    conn_close(c, 1, 1);
}

static void connect_timeout(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state != ST_CONNECTING) return;
  drop_attempt(c);
  emit(EV_CONNECT_FAILED, c->o.id, UV_ETIMEDOUT, 1);
}

/* More connections than slots: one is taken off the queue and closed. */
static void refuse_overflow(uv_tcp_t *server) {
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t) abort();
  uv_tcp_init(g_loop, t);
  uv_accept((uv_stream_t *)server, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, free_closed);
}

static void accept_stream(listener_t *l);

static void on_connection(uv_stream_t *server, int status) {
  listener_t *l = (listener_t *)server;
  if (status < 0) return;
  if (l->kind != L_RELAY) return accept_stream(l);
  conn_t *c = conn_new(l->id);
  if (!c) return refuse_overflow(&l->tcp);
  uv_tcp_init(g_loop, &c->client);
  uv_timer_init(g_loop, &c->timer);
  c->client.data = c;
  c->timer.data = c;
  c->handles = 2;
  if (uv_accept(server, client_of(c)) < 0) {
    conn_close(c, 0, 0);
    c->o.id = -1; /* closed before JavaScript heard of it: its close is still reported, and ignored */
    return;
  }
  uv_tcp_nodelay(&c->client, 1);
  emit(EV_ACCEPT, c->o.id, l->id, 0);
}

/* --- stream sockets ---------------------------------------------------------------------------------------
 *
 * The connections of an HTTP listener, and the proxy's connections to HTTP upstreams, are stream sockets: the
 * addon reads and writes them, JavaScript parses and decides (src/proxy/native-socket.ts gives them the shape of
 * a Node socket). What they read is gathered into one area per loop iteration and handed over with the batch of
 * events, a Buffer per read. A write is tried at once (uv_try_write); what the kernel does not take is copied
 * and queued, the write returns false, and a drain event follows once the queue is written. JavaScript pauses
 * reading when it must (backpressure is its own). An end of stream read and a shutdown done close the socket; so
 * does an error, reported first. The idle timeout is the sweeper's: it reports, JavaScript decides.
 *
 * Two stream sockets can be spliced (a tunnel: a WebSocket after its 101): from then on each one's reads are
 * written to the other here, as the relay does, with one write queue per socket (reading stops while the peer has
 * bytes queued), an end of stream passed on with a shutdown, and an error or a reset of one resetting the other.
 * JavaScript still hears the ends, the timeouts and the closes, and the closed event carries the bytes the splice
 * read and wrote.
 */

enum { SS_CONNECTING, SS_OPEN, SS_CLOSING };
/* A stream socket's TLS: none (plain), handshaking, waiting for JavaScript to choose the certificate, done. */
enum { TLS_NONE, TLS_HANDSHAKE, TLS_HELLO, TLS_SECURE };
/* What JavaScript chose for a hello (tls_choice): not yet, a context, none (the handshake fails). */
enum { CHOICE_WAIT, CHOICE_CTX, CHOICE_NONE };

typedef struct sock {
  obj_t o; /* first member */
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_shutdown_t sreq;
  link_t sweep; /* the sweeper's list (sockets with an idle timeout) */
  SSL *ssl;     /* a TLS socket's (see "TLS"), else NULL */
  int tls, tls_choice;
  struct sock *peer; /* spliced: what this socket reads is written to its peer, here */
  uint64_t last, idle_ms;
  size_t queued; /* bytes in queued writes */
  double spliced_in, spliced_out; /* bytes read and written by the splice */
  int state, reading, eof, shutting, shut, want_drain, timed_out, held;
} sock_t;

typedef struct {
  uv_write_t req;
  size_t len;
  char data[];
} wreq_t;

static sock_t *sock_find(double id) { return (sock_t *)obj_find(id, KIND_SOCK); }

static void sock_unlist(sock_t *s) { link_del(&g_slist, &s->sweep); }

static void sock_activity(sock_t *s) {
  s->last = uv_now(g_loop);
  s->timed_out = 0;
}

static void sweep_streams(uint64_t now) {
  for (link_t *l = g_slist; l; l = l->next) {
    sock_t *s = OWNER(l, sock_t, sweep);
    if (s->timed_out || now - s->last < s->idle_ms) continue;
    s->timed_out = 1; /* reported once until the next traffic */
    emit(EV_S_TIMEOUT, s->o.id, 0, 0);
  }
}

static void sock_closed(uv_handle_t *h) {
  sock_t *s = h->data;
  emit(EV_S_CLOSED, s->o.id, s->spliced_in, s->spliced_out);
  if (s->ssl) SSL_free(s->ssl);
  obj_free(&s->o);
}

static void sock_read(sock_t *s);

/* Closes the socket; a spliced peer is reset with it when `reset` (else it finishes on its own: its end was
   passed on, or comes). */
static void sock_close(sock_t *s, int reset) {
  if (s->state == SS_CLOSING) return;
  s->state = SS_CLOSING;
  sock_unlist(s);
  sock_t *p = s->peer;
  if (p) {
    s->peer = NULL;
    p->peer = NULL;
    if (reset) sock_close(p, 1);
    else if (p->held) { /* it waited for this socket's queue: it reads again, for JavaScript now */
      p->held = 0;
      sock_read(p);
    }
  }
  close_stream(&s->tcp, reset, sock_closed);
}

/* An error: reported, the socket closed, and a spliced peer reset. */
static void sock_fail(sock_t *s, int err) {
  if (s->state == SS_CLOSING) return;
  emit(EV_S_ERROR, s->o.id, err, 0);
  sock_t *p = s->peer;
  sock_close(s, 0);
  if (p) sock_close(p, 1);
}

/* A read lands in the data area, which always has room for one (sread_cb hands a fuller area over at once). */
static void alloc_data(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = g_data + g_data_len;
  buf->len = BUF_SIZE;
}

static void splice_data(sock_t *s, char *base, size_t n);
static void sock_shutdown(sock_t *s);
static void tread_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Bytes read (decrypted, for a TLS socket) for JavaScript: `n` bytes at the end of the data area. */
static void sock_data(sock_t *s, size_t n) {
  sock_activity(s);
  emit(EV_S_DATA, s->o.id, (double)g_data_len, (double)n);
  g_data_len += n;
}

/* The data area keeps room for one read (BUF_SIZE) whenever a read callback returns (a read lands in it,
   alloc_data): when less is left, it is handed over now (JavaScript takes it before more come). */
static void data_room(void) {
  if (g_data_cap - g_data_len < BUF_SIZE) flush(NULL);
}

static void sock_eof(sock_t *s) {
  s->eof = 1;
  uv_read_stop((uv_stream_t *)&s->tcp);
  emit(EV_S_EOF, s->o.id, 0, 0);
  sock_t *p = s->peer;
  if (p && !p->shutting) { /* passed on once the peer's queue is written */
    p->shutting = 1;
    sock_shutdown(p);
  }
  if (s->shut && s->state == SS_OPEN) sock_close(s, 0);
}

static void sread_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  sock_t *s = st->data;
  if (s->state != SS_OPEN) return;
  if (nread > 0 && s->peer) return splice_data(s, buf->base, (size_t)nread);
  if (nread > 0) {
    sock_data(s, (size_t)nread);
    data_room();
  } else if (nread == UV_EOF) {
    sock_eof(s);
  } else if (nread < 0) {
    sock_fail(s, (int)nread);
  }
}

static void sock_read(sock_t *s) {
  if (s->state != SS_OPEN || !s->reading || s->eof || s->held || s->tls == TLS_HELLO) return;
  int r = s->ssl ? uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, tread_cb)
                 : uv_read_start((uv_stream_t *)&s->tcp, alloc_data, sread_cb);
  if (r < 0 && r != UV_EALREADY) sock_fail(s, r);
}

static void sshutdown_cb(uv_shutdown_t *req, int status) {
  sock_t *s = req->data;
  if (status == UV_ECANCELED || s->state == SS_CLOSING) return;
  s->shut = 1;
  if (status < 0) sock_fail(s, status);
  else if (s->eof) sock_close(s, 0);
}

static void tls_close_notify(sock_t *s);

static void sock_shutdown(sock_t *s) {
  if (s->tls == TLS_SECURE) tls_close_notify(s);
  if (s->state == SS_CLOSING) return;
  s->sreq.data = s;
  int r = uv_shutdown(&s->sreq, (uv_stream_t *)&s->tcp, sshutdown_cb);
  if (r < 0) sock_fail(s, r);
}

static void swrite_cb(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  sock_t *s = req->data;
  s->queued -= w->len;
  free(w);
  if (status == UV_ECANCELED || s->state == SS_CLOSING) return;
  if (status < 0) return sock_fail(s, status);
  sock_activity(s);
  if (s->queued > 0) return;
  if (s->want_drain) {
    s->want_drain = 0;
    emit(EV_S_DRAIN, s->o.id, 0, 0);
  }
  sock_t *p = s->peer;
  if (p && p->held) { /* its peer's queue is written: the spliced source reads again */
    p->held = 0;
    sock_read(p);
  }
}

/* Writes n buffers to the socket (in order, after what is queued): 1 when all went out now, 0 when some were queued
   (JavaScript gets a drain event once they are written, when `drain`) or the write failed. */
static int raw_write(sock_t *s, uv_buf_t *bufs, unsigned n, int drain) {
  size_t total = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  size_t sent = 0;
  if (s->queued == 0 && s->state == SS_OPEN) {
    int r = uv_try_write((uv_stream_t *)&s->tcp, bufs, n);
    if (r < 0 && r != UV_EAGAIN) {
      sock_fail(s, r);
      return 0;
    }
    if (r > 0) sent = (size_t)r;
    if (sent == total) {
      if (total > 0) sock_activity(s);
      return 1;
    }
  }
  wreq_t *w = malloc(sizeof *w + (total - sent));
  if (!w) abort();
  size_t off = 0;
  for (unsigned i = 0; i < n; i++) { /* the bytes not yet written, from `sent` on */
    size_t len = bufs[i].len;
    if (sent >= len) {
      sent -= len;
      continue;
    }
    memcpy(w->data + off, bufs[i].base + sent, len - sent);
    off += len - sent;
    sent = 0;
  }
  w->len = off;
  w->req.data = s;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)off);
  int r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, swrite_cb);
  if (r < 0) {
    free(w);
    sock_fail(s, r);
    return 0;
  }
  s->queued += off;
  if (drain) s->want_drain = 1;
  return 0;
}

static int tls_write(sock_t *s, uv_buf_t *bufs, unsigned n, int drain);

/* Writes what JavaScript or a splice gives: as it is, or encrypted on a TLS socket (as raw_write). */
static int sock_write(sock_t *s, uv_buf_t *bufs, unsigned n, int drain) {
  return s->ssl ? tls_write(s, bufs, n, drain) : raw_write(s, bufs, n, drain);
}

/* A spliced socket's read: written to its peer at once; reading stops while the peer has bytes queued. Traffic
   either way keeps both from being idle. */
static void splice_data(sock_t *s, char *base, size_t n) {
  sock_t *p = s->peer;
  uv_buf_t b = uv_buf_init(base, (unsigned)n);
  sock_activity(s);
  sock_activity(p);
  s->spliced_in += (double)n;
  p->spliced_out += (double)n;
  if (sock_write(p, &b, 1, 0) || s->state != SS_OPEN || p->state != SS_OPEN) return;
  s->held = 1;
  uv_read_stop((uv_stream_t *)&s->tcp);
}


/* --- TLS ----------------------------------------------------------------------------------------------------
 *
 * The connections of an HTTP listener with certificates are stream sockets that terminate TLS here, with the
 * OpenSSL Node runs on (the node binary's own, or the system's libssl it links), on memory BIOs: what the socket
 * reads is fed to the SSL and what the SSL decrypts is what JavaScript reads (or the splice moves); what JavaScript
 * writes is encrypted into the SSL's output BIO, which goes to the socket as any write does (raw_write).
 *
 * The handshake asks JavaScript for the certificate: once the client's hello came, the server name it asked for is
 * reported (EV_T_HELLO) and the handshake waits (the socket does not read) until tlsuse() names a context (or
 * none: the handshake then fails with an unrecognized_name alert). Its end is reported (EV_T_SECURE); its failure
 * is an error (UV_EPROTO) and the close. Contexts are made by tlsctx() from PEM with the settings tlsbase() gave
 * once; every SSL starts on the base context (no certificate, the session tickets' keys) and is moved to the
 * chosen one, as Node's SNI callback does. ALPN: http/1.1 only (a client offering only other protocols gets a
 * no_application_protocol alert, as from Node's server with ALPNProtocols ['http/1.1']).
 *
 * Everything a read brought is decrypted at once, in the read callback, into the data area (or, spliced, written
 * to the peer). tlsuse() only takes the handshake on: the client can have sent nothing the SSL can use before the
 * server's answer to its hello (early data is not accepted), so what comes next comes with a read.
 *
 * OpenSSL's error queue is Node's too (one per thread): every failure here is cleared from it.
 */

#define TLS_BIO_KEEP 16384 /* a memory BIO that grew past this is replaced once empty (an idle socket keeps little) */
#define NAME_MAX_LEN 255

static SSL_CTX *g_tls_base;
static SSL_CTX **g_ctxs; /* by id - 1; NULL once freed (ids are never reused) */
static uint32_t g_nctxs;
static char g_plain[BUF_SIZE];  /* a spliced TLS socket's decrypted bytes */
static char g_gather[BUF_SIZE]; /* small buffers written as one TLS record */
static const unsigned char ALPN_HTTP11[] = "\x08http/1.1";

/* Writes what the SSL has produced to the socket. */
static int tls_flush(sock_t *s, int drain) {
  BIO *w = SSL_get_wbio(s->ssl);
  char *p;
  long n = BIO_get_mem_data(w, &p);
  if (n <= 0) return 1;
  uv_buf_t b = uv_buf_init(p, (unsigned)n);
  int ok = raw_write(s, &b, 1, drain); /* what the kernel did not take is copied */
  if (n > TLS_BIO_KEEP) {
    BIO *fresh = BIO_new(BIO_s_mem());
    if (!fresh) abort();
    SSL_set0_wbio(s->ssl, fresh);
  } else {
    (void)BIO_reset(w);
  }
  return ok;
}

static void tls_failed(sock_t *s) {
  ERR_clear_error();
  tls_flush(s, 0); /* the alert, if there is one */
  sock_fail(s, UV_EPROTO);
}

static void tls_close_notify(sock_t *s) {
  if (SSL_shutdown(s->ssl) < 0) ERR_clear_error();
  tls_flush(s, 0);
}

static int tls_write(sock_t *s, uv_buf_t *bufs, unsigned n, int drain) {
  if (s->tls != TLS_SECURE) return 0;
  ERR_clear_error();
  size_t total = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  uv_buf_t one;
  if (n > 1 && total <= sizeof g_gather) {
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
      memcpy(g_gather + off, bufs[i].base, bufs[i].len);
      off += bufs[i].len;
    }
    one = uv_buf_init(g_gather, (unsigned)total);
    bufs = &one;
    n = 1;
  }
  for (unsigned i = 0; i < n; i++) {
    if (bufs[i].len == 0) continue;
    /* A memory BIO takes everything: the whole buffer is encrypted now. */
    if (SSL_write(s->ssl, bufs[i].base, (int)bufs[i].len) <= 0) {
      tls_failed(s);
      return 0;
    }
  }
  return tls_flush(s, drain);
}

/* The handshake goes on; 1 once it is done. */
static int tls_handshake(sock_t *s) {
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) {
    s->tls = TLS_SECURE;
    tls_flush(s, 0);
    if (s->state != SS_OPEN) return 0;
    emit(EV_T_SECURE, s->o.id, SSL_version(s->ssl), 0);
    return 1;
  }
  int e = SSL_get_error(s->ssl, r);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_CLIENT_HELLO_CB) {
    tls_failed(s);
    return 0;
  }
  tls_flush(s, 0);
  if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) uv_read_stop((uv_stream_t *)&s->tcp); /* until tlsuse() */
  return 0;
}

/* Handshakes and decrypts what a read fed the SSL. */
static void tls_pump(sock_t *s) {
  ERR_clear_error(); /* SSL_get_error reads the queue: it must hold nothing of others' */
  if (s->tls == TLS_HANDSHAKE && !tls_handshake(s)) return;
  if (s->tls != TLS_SECURE) return;
  while (s->state == SS_OPEN) {
    if (!s->peer) data_room();
    if (s->state != SS_OPEN) return; /* JavaScript closed it while it took the area */
    char *dst = s->peer ? g_plain : g_data + g_data_len;
    int n = SSL_read(s->ssl, dst, BUF_SIZE);
    if (n > 0) {
      if (s->peer) splice_data(s, dst, (size_t)n);
      else sock_data(s, (size_t)n);
      continue;
    }
    int e = SSL_get_error(s->ssl, n);
    if (e == SSL_ERROR_WANT_READ) {
      tls_flush(s, 0); /* what reading made it answer (a key update) */
      BIO *r = SSL_get_rbio(s->ssl);
      BUF_MEM *m;
      if (BIO_ctrl_pending(r) == 0 && BIO_get_mem_ptr(r, &m) > 0 && m->max > TLS_BIO_KEEP) {
        BIO *fresh = BIO_new(BIO_s_mem()); /* all read: a large read's memory is not kept while idle */
        if (!fresh) abort();
        SSL_set0_rbio(s->ssl, fresh);
      }
      return;
    }
    if (e == SSL_ERROR_ZERO_RETURN) return sock_eof(s); /* the client's close_notify */
    return tls_failed(s);
  }
}

static void tread_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  sock_t *s = st->data;
  if (s->state != SS_OPEN) return;
  if (nread > 0) {
    sock_activity(s);
    BIO_write(SSL_get_rbio(s->ssl), buf->base, (int)nread);
    tls_pump(s);
    data_room(); /* a hello's name took some (tls_pump keeps room after what it decrypts) */
  } else if (nread == UV_EOF) {
    sock_eof(s);
  } else if (nread < 0) {
    sock_fail(s, (int)nread);
  }
}

static void sconnect_cb(uv_connect_t *req, int status) {
  sock_t *s = req->data;
  if (status == UV_ECANCELED || s->state != SS_CONNECTING) return;
  if (status < 0) return sock_fail(s, status);
  s->state = SS_OPEN;
  uv_tcp_nodelay(&s->tcp, 1);
  uv_tcp_keepalive(&s->tcp, 1, KEEPALIVE_S);
  sock_activity(s);
  emit(EV_S_CONNECTED, s->o.id, 0, 0);
  if (s->shutting) sock_shutdown(s);
  sock_read(s);
}

/* The server name of a client's hello (its first host_name), copied to `out`; 0 when there is none. */
static size_t hello_name(SSL *ssl, char *out) {
  const unsigned char *p;
  size_t len;
  if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 2) return 0;
  size_t list = ((size_t)p[0] << 8) | p[1];
  if (list + 2 > len) return 0;
  const unsigned char *end = p + 2 + list;
  for (p += 2; end - p >= 3;) {
    int type = p[0];
    size_t n = ((size_t)p[1] << 8) | p[2];
    p += 3;
    if ((size_t)(end - p) < n) return 0;
    if (type == TLSEXT_NAMETYPE_host_name) {
      if (n > NAME_MAX_LEN) return 0;
      memcpy(out, p, n);
      return n;
    }
    p += n;
  }
  return 0;
}

/* The hello came: JavaScript is asked for the certificate, the handshake waits (and resumes once it answered). */
static int hello_cb(SSL *ssl, int *alert, void *arg) {
  (void)arg;
  sock_t *s = SSL_get_app_data(ssl);
  if (s->tls_choice == CHOICE_CTX) return SSL_CLIENT_HELLO_SUCCESS;
  if (s->tls_choice == CHOICE_NONE) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_CLIENT_HELLO_ERROR;
  }
  /* The area has room: this runs in a read callback (tlsuse() comes after the choice), with BUF_SIZE free. */
  size_t n = hello_name(ssl, g_data + g_data_len);
  emit(EV_T_HELLO, s->o.id, (double)g_data_len, (double)n);
  g_data_len += n;
  s->tls = TLS_HELLO;
  return SSL_CLIENT_HELLO_RETRY;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  unsigned char *chosen;
  if (SSL_select_next_proto(&chosen, outlen, ALPN_HTTP11, sizeof ALPN_HTTP11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

/* A TLS socket's SSL, on the base context (a TLS listener exists only once tlsbase() made it). */
static void tls_accept(sock_t *s) {
  s->ssl = SSL_new(g_tls_base);
  BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
  if (!s->ssl || !r || !w) abort();
  SSL_set_bio(s->ssl, r, w);
  SSL_set_app_data(s->ssl, s);
  SSL_set_accept_state(s->ssl);
  s->tls = TLS_HANDSHAKE;
}

static void accept_stream(listener_t *l) {
  sock_t *s = obj_new(sizeof *s, KIND_SOCK);
  if (!s) return refuse_overflow(&l->tcp);
  uv_tcp_init(g_loop, &s->tcp);
  s->tcp.data = s;
  s->state = SS_OPEN;
  s->reading = 1;
  if (l->kind == L_TLS) tls_accept(s);
  if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&s->tcp) < 0) {
    sock_close(s, 0);
    s->o.id = -1; /* closed before JavaScript heard of it: its close is still reported, and ignored */
    return;
  }
  uv_tcp_nodelay(&s->tcp, 1);
  sock_activity(s);
  emit(EV_ACCEPT, s->o.id, l->id, 0);
  sock_read(s);
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

/* init(onEvents, events: Float64Array, data: Buffer): the one callback, the array of events it reads and the data
   area of stream sockets' reads; returns the batch size. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
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
  void *area;
  size_t area_len;
  if (napi_get_buffer_info(env, argv[2], &area, &area_len) != napi_ok || area_len < DATA_MIN) {
    napi_throw_type_error(env, NULL, "data must be a Buffer of at least 128 KiB");
    return NULL;
  }
  g_env = env;
  napi_get_uv_event_loop(env, &g_loop);
  napi_create_reference(env, argv[0], 1, &g_callback);
  napi_create_reference(env, argv[1], 1, &g_events_ref);
  napi_create_reference(env, argv[2], 1, &g_data_ref);
  g_events = data;
  g_data = area;
  g_data_cap = area_len;
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

/* listen(host, port, backlog, kind): a listener id; throws with the error's code (EADDRINUSE, EACCES...). Its
   connections are relay connections (kind 0), stream sockets (1), or stream sockets that terminate TLS (2). */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  struct sockaddr_storage ss;
  int r = addr_of(env, argv[0], (int)num(env, argv[1]), &ss);
  if (r < 0) return throw_uv(env, r);
  int kind = (int)num(env, argv[3]);
  if (kind == L_TLS && !g_tls_base) {
    napi_throw_error(env, "EINVAL", "a TLS listener needs tlsbase() first");
    return NULL;
  }
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
  l->kind = kind;
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
    emit(EV_CONNECT_FAILED, c->o.id, r, 0);
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

/* peer(id): the client's address (of a relay connection or a stream socket), or null. */
static napi_value js_peer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  double id = num(env, argv[0]);
  conn_t *c = conn_find(id);
  sock_t *s = c ? NULL : sock_find(id);
  uv_tcp_t *t = c ? &c->client : s ? &s->tcp : NULL;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char name[64] = "";
  napi_value v;
  if (!t || uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) < 0) {
    napi_get_null(env, &v);
    return v;
  }
  if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, name, sizeof name);
  else uv_ip4_name((struct sockaddr_in *)&ss, name, sizeof name);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* sconnect(ip, port): a stream socket connecting; connected, or an error and its close, come as events. */
static napi_value js_sconnect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  struct sockaddr_storage ss;
  int r = addr_of(env, argv[0], (int)num(env, argv[1]), &ss);
  if (r < 0) return throw_uv(env, r);
  sock_t *s = obj_new(sizeof *s, KIND_SOCK);
  if (!s) return throw_uv(env, UV_EMFILE);
  uv_tcp_init(g_loop, &s->tcp);
  s->tcp.data = s;
  s->creq.data = s;
  s->state = SS_CONNECTING;
  s->reading = 1;
  r = uv_tcp_connect(&s->creq, &s->tcp, (struct sockaddr *)&ss, sconnect_cb);
  if (r < 0) sock_fail(s, r);
  napi_value v;
  napi_create_double(env, s->o.id, &v);
  return v;
}

/* swrite(id, buf[, buf2]): true when all went out now; false when some wait (a drain event follows), or the
   socket is gone. */
static napi_value js_swrite(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_value v;
  sock_t *s = argc >= 2 ? sock_find(num(env, argv[0])) : NULL;
  int ok = 0;
  if (s && s->state != SS_CLOSING && !s->shutting) {
    uv_buf_t bufs[2];
    unsigned n = 0;
    for (size_t i = 1; i < argc; i++) {
      void *data;
      size_t len;
      if (napi_get_buffer_info(env, argv[i], &data, &len) != napi_ok) {
        napi_throw_type_error(env, NULL, "swrite takes Buffers");
        return NULL;
      }
      bufs[n++] = uv_buf_init(data, (unsigned)len);
    }
    ok = sock_write(s, bufs, n, 1);
  }
  napi_get_boolean(env, ok, &v);
  return v;
}

static sock_t *sock_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  if (!args(env, info, want, argv)) return NULL;
  sock_t *s = sock_find(num(env, argv[0]));
  return s && s->state != SS_CLOSING ? s : NULL;
}

/* send(id): a shutdown once what is queued is written (at once when connected, else after the connect). */
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  sock_t *s = sock_arg(env, info, 1, argv);
  if (s && !s->shutting) {
    s->shutting = 1;
    if (s->state == SS_OPEN) sock_shutdown(s);
  }
  return undefined(env);
}

/* sdestroy(id, reset): closes the socket now (with a reset when asked); its close comes as an event. */
static napi_value js_sdestroy(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = sock_arg(env, info, 2, argv);
  bool reset = false;
  if (s) napi_get_value_bool(env, argv[1], &reset);
  if (s) sock_close(s, reset);
  return undefined(env);
}

/* sread(id, on): reading resumes or pauses. */
static napi_value js_sread(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = sock_arg(env, info, 2, argv);
  bool on = false;
  if (!s) return undefined(env);
  if (s->peer) return undefined(env); /* the splice reads as its peer can take */
  napi_get_value_bool(env, argv[1], &on);
  s->reading = on;
  if (on) sock_read(s);
  else if (s->state == SS_OPEN) uv_read_stop((uv_stream_t *)&s->tcp);
  return undefined(env);
}

/* splice(a, b): from now on what either socket reads is written to the other, here (see "stream sockets");
   false when either is gone, closing, or spliced already. */
static napi_value js_splice(napi_env env, napi_callback_info info) {
  napi_value argv[2], v;
  if (!args(env, info, 2, argv)) return NULL;
  sock_t *a = sock_find(num(env, argv[0]));
  sock_t *b = sock_find(num(env, argv[1]));
  int ok = a && b && a != b && a->state == SS_OPEN && b->state == SS_OPEN && !a->peer && !b->peer;
  if (ok) {
    a->peer = b;
    b->peer = a;
    for (int i = 0; i < 2; i++) {
      sock_t *s = i ? b : a;
      sock_t *p = i ? a : b;
      s->reading = 1;
      s->held = p->queued > 0; /* what JavaScript wrote to the peer goes first */
      if (s->eof && !p->shutting) { /* an end of stream already read (and told): passed on */
        p->shutting = 1;
        sock_shutdown(p);
      }
      sock_read(s);
    }
  }
  napi_get_boolean(env, ok, &v);
  return v;
}

/* sidle(id, ms): the idle timeout (0: none), from now; a timeout event comes once per idle spell. */
static napi_value js_sidle(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = sock_arg(env, info, 2, argv);
  if (!s) return undefined(env);
  double ms = num(env, argv[1]);
  s->idle_ms = ms > 0 ? (uint64_t)ms : 0;
  sock_activity(s);
  if (s->idle_ms == 0) sock_unlist(s);
  else {
    link_add(&g_slist, &s->sweep);
    sweeper_start();
  }
  return undefined(env);
}

/* --- TLS contexts -------------------------------------------------------------------------------------------- */

static int g_tls_min;
static char g_tls_ciphers[1024], g_tls_suites[512], g_tls_groups[256];

static napi_value throw_tls(napi_env env, const char *what) {
  char why[256];
  unsigned long e = ERR_peek_last_error();
  if (e) ERR_error_string_n(e, why, sizeof why);
  else snprintf(why, sizeof why, "unknown error");
  ERR_clear_error();
  char msg[400];
  snprintf(msg, sizeof msg, "%s: %s", what, why);
  napi_throw_error(env, "GLOW_E_PROXY_TLS", msg);
  return NULL;
}

/* A context with the settings tlsbase() was given, without a certificate. */
static SSL_CTX *tls_ctx_new(void) {
  SSL_CTX *c = SSL_CTX_new(TLS_server_method());
  if (!c) return NULL;
  if (!SSL_CTX_set_min_proto_version(c, g_tls_min) || !SSL_CTX_set_cipher_list(c, g_tls_ciphers) ||
      !SSL_CTX_set_ciphersuites(c, g_tls_suites) || !SSL_CTX_set1_groups_list(c, g_tls_groups)) {
    SSL_CTX_free(c);
    return NULL;
  }
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS); /* an idle connection holds no record buffers */
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION); /* TLS 1.2: a client cannot make the proxy handshake again */
  /* Resumption by session tickets only, as Node's contexts (no cache of sessions in the process). */
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_set_alpn_select_cb(c, alpn_cb, NULL);
  return c;
}

static int str_arg(napi_env env, napi_value v, char *out, size_t cap) {
  size_t len = 0;
  return napi_get_value_string_utf8(env, v, out, cap, &len) == napi_ok && len < cap - 1;
}

/* tlsbase(minVersion, ciphers, ciphersuites, groups): the settings of every TLS context (TLS 1.2 cipher list,
   TLS 1.3 suites, key exchange groups), and the base context; once per process (later calls change nothing). */
static napi_value js_tlsbase(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv)) return NULL;
  if (g_tls_base) return undefined(env);
  g_tls_min = (int)num(env, argv[0]);
  if (!str_arg(env, argv[1], g_tls_ciphers, sizeof g_tls_ciphers) || !str_arg(env, argv[2], g_tls_suites, sizeof g_tls_suites) ||
      !str_arg(env, argv[3], g_tls_groups, sizeof g_tls_groups)) {
    napi_throw_type_error(env, NULL, "tlsbase takes a number and three short strings");
    return NULL;
  }
  SSL_CTX *c = tls_ctx_new();
  if (!c) return throw_tls(env, "the TLS settings cannot be used");
  SSL_CTX_set_client_hello_cb(c, hello_cb, NULL);
  g_tls_base = c;
  return undefined(env);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return 0;
}

/* tlsctx(certPem, keyPem): a context serving the certificate (its chain after it) and its key; its id. Throws
   (GLOW_E_PROXY_TLS) with OpenSSL's reason. */
static napi_value js_tlsctx(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv)) return NULL;
  void *cert, *key;
  size_t cert_len, key_len;
  if (napi_get_buffer_info(env, argv[0], &cert, &cert_len) != napi_ok || napi_get_buffer_info(env, argv[1], &key, &key_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "tlsctx takes two Buffers");
    return NULL;
  }
  if (!g_tls_base) {
    napi_throw_error(env, "EINVAL", "tlsctx needs tlsbase() first");
    return NULL;
  }
  SSL_CTX *c = tls_ctx_new();
  if (!c) return throw_tls(env, "no TLS context");
  const char *fail = NULL;
  BIO *b = BIO_new_mem_buf(cert, (int)cert_len);
  X509 *x = b ? PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL) : NULL;
  if (!x || SSL_CTX_use_certificate(c, x) != 1) fail = "the certificate cannot be used";
  X509_free(x);
  while (!fail && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
    if (!SSL_CTX_add0_chain_cert(c, x)) {
      X509_free(x);
      fail = "the certificate chain cannot be used";
    }
  }
  if (!fail) ERR_clear_error(); /* the end of the PEM */
  BIO_free(b);
  if (!fail) {
    b = BIO_new_mem_buf(key, (int)key_len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    if (!k || SSL_CTX_use_PrivateKey(c, k) != 1) fail = "the key cannot be used";
    else if (SSL_CTX_check_private_key(c) != 1) fail = "the key does not belong to the certificate";
    EVP_PKEY_free(k);
    BIO_free(b);
  }
  if (fail) {
    SSL_CTX_free(c);
    return throw_tls(env, fail);
  }
  SSL_CTX **cs = realloc(g_ctxs, (g_nctxs + 1) * sizeof *cs);
  if (!cs) abort();
  g_ctxs = cs;
  g_ctxs[g_nctxs++] = c;
  napi_value v;
  napi_create_uint32(env, g_nctxs, &v);
  return v;
}

static SSL_CTX *ctx_find(double id) {
  return id >= 1 && id <= g_nctxs ? g_ctxs[(uint32_t)id - 1] : NULL;
}

/* tlsfree(id): the context is let go (handshakes that use it keep it until their connection closes). */
static napi_value js_tlsfree(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  double id = num(env, argv[0]);
  SSL_CTX *c = ctx_find(id);
  if (c) {
    SSL_CTX_free(c);
    g_ctxs[(uint32_t)id - 1] = NULL;
  }
  return undefined(env);
}

/* tlsuse(id, ctx): the answer to a hello: the context whose certificate the handshake serves (0, or one freed:
   none, and the handshake fails). The handshake goes on now. */
static napi_value js_tlsuse(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = sock_arg(env, info, 2, argv);
  if (!s || s->tls != TLS_HELLO) return undefined(env);
  SSL_CTX *c = ctx_find(num(env, argv[1]));
  s->tls_choice = c && SSL_set_SSL_CTX(s->ssl, c) ? CHOICE_CTX : CHOICE_NONE;
  s->tls = TLS_HANDSHAKE;
  ERR_clear_error();
  tls_handshake(s); /* the server's answer to the hello (see "TLS": nothing more to decrypt yet) */
  sock_read(s);
  return undefined(env);
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
      {"sconnect", NULL, js_sconnect, NULL, NULL, NULL, napi_default, NULL},
      {"swrite", NULL, js_swrite, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"sdestroy", NULL, js_sdestroy, NULL, NULL, NULL, napi_default, NULL},
      {"sread", NULL, js_sread, NULL, NULL, NULL, napi_default, NULL},
      {"sidle", NULL, js_sidle, NULL, NULL, NULL, napi_default, NULL},
      {"splice", NULL, js_splice, NULL, NULL, NULL, napi_default, NULL},
      {"tlsbase", NULL, js_tlsbase, NULL, NULL, NULL, napi_default, NULL},
      {"tlsctx", NULL, js_tlsctx, NULL, NULL, NULL, napi_default, NULL},
      {"tlsfree", NULL, js_tlsfree, NULL, NULL, NULL, napi_default, NULL},
      {"tlsuse", NULL, js_tlsuse, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
