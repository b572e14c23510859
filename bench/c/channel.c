/* A single-producer single-consumer ring in one POSIX shared memory object,
 * written from CHANNEL-LAYOUT.md (version 1) and nothing else: the header,
 * records padded to 8 bytes with a padding record at the ring's end, head
 * and tail, the two ends held by open-file-description locks, and the
 * sleeping words (spin for up to SPIN_US, then FUTEX_WAIT, never longer than
 * 100 ms at a time). It is the limit the channel rows of bench/channel.mjs
 * are measured against, and a C peer for a posix-shm Channel.
 *
 * Every message is checked by its receiver: the sequence number, a u64 in
 * its first 8 bytes; one byte in every 64-byte line, byte i holding
 * (i >> 6) & 0xff; and the last byte, the sequence number's low byte.
 * bench/channel-workloads.mjs writes and checks the same messages.
 *
 *   channel bench SIZE SECONDS CAPACITY view|copy
 *       one way, producer (this process) to consumer (a forked process that
 *       opens the object by name); the consumer checks each message in
 *       place (view) or after copying it out (copy), and prints JSON: the
 *       messages per second and payload GB/s after a warm-up of a fifth of
 *       SECONDS (at least 0.1 s), measured by the consumer
 *   channel pingpong SECONDS CAPACITY
 *       64-byte round trips over two rings, one each way; prints JSON
 *   channel send NAME SIZE COUNT [CAPACITY]
 *       the sending end of the named object (made with CAPACITY if given,
 *       else opened): COUNT checked messages of SIZE bytes, then end()
 *   channel receive NAME [CAPACITY]
 *       the receiving end: checks every message until the sender has ended
 *       and the ring is drained; prints JSON with the count and bytes
 *
 * Exit status 0 on success; 1 with a message on stderr otherwise (a message
 * that fails its check, a corrupt header, the peer gone). Linux only (futex,
 * F_OFD_SETLK), like the rest of bench/c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEADER_BYTES 4096u
#define MAGIC 0x4e4148434d485350ull /* "PSHMCHAN" */
#define VERSION 1u
#define MIN_CAPACITY 4096ull
#define MAX_CAPACITY (1ull << 30)
#define KIND_MESSAGE 1u
#define KIND_PADDING 2u
#define SPIN_US 50.0
#define SLEEP_NS 100000000L /* 100 ms, the longest sleep before looking again */

/* Header offsets, as in the layout's table. */
enum {
  OFF_MAGIC = 0,
  OFF_VERSION = 8,
  OFF_HEADER_BYTES = 12,
  OFF_CAPACITY = 16,
  OFF_HEAD = 64,
  OFF_ENDED = 72,
  OFF_SENDER_STATE = 76,
  OFF_TAIL = 128,
  OFF_RECEIVER_STATE = 136,
  OFF_RECEIVER_SLEEPING = 192,
  OFF_SENDER_SLEEPING = 256,
};

static void die(const char *what) {
  fprintf(stderr, "channel: %s\n", what);
  exit(1);
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline uint64_t align8(uint64_t n) { return (n + 7) & ~7ull; }

struct ring {
  int fd;
  uint8_t *base, *data;
  size_t size;
  uint64_t cap;
  _Atomic uint64_t *head, *tail;
  _Atomic uint32_t *ended, *sender_state, *receiver_state, *receiver_sleeping, *sender_sleeping;
  /* The end's own counter, and its last look at the other's. */
  uint64_t mine, theirs;
  uint64_t pending; /* receiver: the record size of the message in hand */
  int end_offset;   /* the byte this end locks: 76 or 136; 0 before taking one */
};

#define U64(r, off) ((_Atomic uint64_t *)((r)->base + (off)))
#define U32(r, off) ((_Atomic uint32_t *)((r)->base + (off)))

static void futex_wait(_Atomic uint32_t *word, uint32_t value) {
  struct timespec timeout = {0, SLEEP_NS};
  syscall(SYS_futex, word, FUTEX_WAIT, value, &timeout, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word) { syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0); }

/* The waker's half, after its store of head, tail or ended (both seq_cst). */
static inline void wake_if_sleeping(_Atomic uint32_t *word) {
  if (atomic_load(word) == 1) {
    atomic_store(word, 0);
    futex_wake_all(word);
  }
}

static void map_ring(struct ring *r, uint64_t cap) {
  r->cap = cap;
  r->size = HEADER_BYTES + cap;
  r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
  if (r->base == MAP_FAILED) die("mmap failed");
  r->data = r->base + HEADER_BYTES;
  r->head = U64(r, OFF_HEAD);
  r->tail = U64(r, OFF_TAIL);
  r->ended = U32(r, OFF_ENDED);
  r->sender_state = U32(r, OFF_SENDER_STATE);
  r->receiver_state = U32(r, OFF_RECEIVER_STATE);
  r->receiver_sleeping = U32(r, OFF_RECEIVER_SLEEPING);
  r->sender_sleeping = U32(r, OFF_SENDER_SLEEPING);
}

static const char *shm_name(const char *name, char *out, size_t n) {
  snprintf(out, n, "%s%s", name[0] == '/' ? "" : "/", name);
  return out;
}

static void ring_create(struct ring *r, const char *name, uint64_t cap) {
  char path[256];
  if (cap < MIN_CAPACITY || cap > MAX_CAPACITY || (cap & (cap - 1))) die("capacity must be a power of two from 4096 to 2^30");
  memset(r, 0, sizeof *r);
  r->fd = shm_open(shm_name(name, path, sizeof path), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (r->fd < 0) die("shm_open (create) failed");
  if (ftruncate(r->fd, (off_t)(HEADER_BYTES + cap)) != 0) die("ftruncate failed");
  map_ring(r, cap);
  *(uint32_t *)(r->base + OFF_VERSION) = VERSION;
  *(uint32_t *)(r->base + OFF_HEADER_BYTES) = HEADER_BYTES;
  *(uint64_t *)(r->base + OFF_CAPACITY) = cap;
  atomic_store_explicit(U64(r, OFF_MAGIC), MAGIC, memory_order_release); /* last */
}

static void ring_open(struct ring *r, const char *name) {
  char path[256];
  memset(r, 0, sizeof *r);
  r->fd = shm_open(shm_name(name, path, sizeof path), O_RDWR, 0);
  if (r->fd < 0) die("shm_open (open) failed");
  /* The creator may be between sizing and storing magic: retry for 1 s. */
  uint64_t magic = 0;
  double start = now_us();
  struct stat st;
  for (;;) {
    if (fstat(r->fd, &st) != 0) die("fstat failed");
    if ((size_t)st.st_size >= HEADER_BYTES) {
      uint8_t *header = mmap(NULL, HEADER_BYTES, PROT_READ, MAP_SHARED, r->fd, 0);
      if (header == MAP_FAILED) die("mmap failed");
      magic = atomic_load_explicit((_Atomic uint64_t *)header, memory_order_acquire);
      uint32_t version = *(uint32_t *)(header + OFF_VERSION);
      uint32_t header_bytes = *(uint32_t *)(header + OFF_HEADER_BYTES);
      uint64_t cap = *(uint64_t *)(header + OFF_CAPACITY);
      munmap(header, HEADER_BYTES);
      if (magic != 0) {
        if (magic != MAGIC) die("not a channel (magic)");
        if (version != VERSION) die("unknown channel version");
        if (header_bytes != HEADER_BYTES) die("not a channel (header_bytes)");
        if (cap < MIN_CAPACITY || cap > MAX_CAPACITY || (cap & (cap - 1))) die("not a channel (capacity)");
        if ((uint64_t)st.st_size < HEADER_BYTES + cap) die("not a channel (object smaller than 4096 + capacity)");
        map_ring(r, cap);
        return;
      }
    }
    if (now_us() - start > 1e6) die("not a channel (magic still 0 after 1 s)");
    usleep(1000);
  }
}

/* Holding an end: an exclusive OFD lock of one byte, then *_state = 1. */
static void take_end(struct ring *r, int offset) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
  if (fcntl(r->fd, F_OFD_SETLK, &fl) != 0) die(errno == EAGAIN || errno == EACCES ? "that end is busy" : "F_OFD_SETLK failed");
  r->end_offset = offset;
  atomic_store(U32(r, offset), 1);
  if (offset == OFF_SENDER_STATE) {
    r->mine = atomic_load(r->head);
    r->theirs = atomic_load(r->tail);
  } else {
    r->mine = atomic_load(r->tail);
    r->theirs = atomic_load(r->head);
  }
}

static void give_up_end(struct ring *r) {
  if (!r->end_offset) return;
  atomic_store(U32(r, r->end_offset), 0);
  struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = r->end_offset, .l_len = 1};
  fcntl(r->fd, F_OFD_SETLK, &fl);
  r->end_offset = 0;
}

/* The other end died: its state says held, yet nobody locks its byte, and
 * the state still says held after that look (a holder that closes clears
 * it before it unlocks). */
static int peer_gone(struct ring *r) {
  int other = r->end_offset == OFF_SENDER_STATE ? OFF_RECEIVER_STATE : OFF_SENDER_STATE;
  if (atomic_load(U32(r, other)) != 1) return 0;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = other, .l_len = 1};
  if (fcntl(r->fd, F_OFD_GETLK, &fl) != 0) return 0;
  return fl.l_type == F_UNLCK && atomic_load(U32(r, other)) == 1;
}

static void ring_close(struct ring *r) {
  give_up_end(r);
  munmap(r->base, r->size);
  close(r->fd);
}

/* ---- sending ---------------------------------------------------------- */

/* Waits until `bytes` are free: spin, then sleep on sender_sleeping. */
static void wait_for_space(struct ring *r, uint64_t bytes) {
  double start = 0;
  for (unsigned i = 0;; i++) {
    uint64_t tail = r->theirs;
    if (tail > r->mine || r->mine - tail > r->cap || (tail & 7)) die("corrupt channel (tail)");
    if (r->cap - (r->mine - tail) >= bytes) return;
    if (i % 64 == 0) {
      double t = now_us();
      if (i == 0) start = t;
      if (t - start >= SPIN_US) {
        atomic_store(r->sender_sleeping, 1);
        r->theirs = atomic_load(r->tail);
        if (r->cap - (r->mine - r->theirs) >= bytes) {
          atomic_store(r->sender_sleeping, 0);
          continue;
        }
        futex_wait(r->sender_sleeping, 1);
        if (peer_gone(r)) die("the receiver is gone");
      } else {
        cpu_relax();
      }
    } else {
      cpu_relax();
    }
    r->theirs = atomic_load_explicit(r->tail, memory_order_acquire);
  }
}

static void publish_head(struct ring *r) {
  atomic_store(r->head, r->mine); /* release, and sequentially consistent */
  wake_if_sleeping(r->receiver_sleeping);
}

static void write_record_header(struct ring *r, uint64_t pos, uint32_t length, uint32_t kind) {
  memcpy(r->data + pos, &length, 4);
  memcpy(r->data + pos + 4, &kind, 4);
}

static void ring_send(struct ring *r, const void *payload, uint32_t length) {
  uint64_t need = 8 + align8(length);
  if (need > r->cap) die("message larger than the ring can ever hold");
  for (;;) {
    uint64_t pos = r->mine & (r->cap - 1);
    uint64_t to_end = r->cap - pos;
    uint64_t pad = need > to_end ? to_end : 0;
    if (pad && pad + need > r->cap) {
      /* Padding and message together can never fit (the layout's steps
       * would wait forever): publish the padding record on its own, so the
       * receiver consumes it and the message can go at the ring's start. */
      wait_for_space(r, pad);
      write_record_header(r, pos, 0, KIND_PADDING);
      r->mine += pad;
      publish_head(r);
      continue;
    }
    wait_for_space(r, pad + need);
    if (pad) {
      write_record_header(r, pos, 0, KIND_PADDING);
      r->mine += pad;
      pos = 0;
    }
    write_record_header(r, pos, length, KIND_MESSAGE);
    memcpy(r->data + pos + 8, payload, length);
    r->mine += need;
    publish_head(r);
    return;
  }
}

static void ring_end(struct ring *r) {
  atomic_store(r->ended, 1);
  wake_if_sleeping(r->receiver_sleeping);
}

/* ---- receiving -------------------------------------------------------- */

/* Until head moves past tail (returns 1) or the sender has ended and the
 * ring is drained (returns 0): spin, then sleep on receiver_sleeping. */
static int wait_for_data(struct ring *r) {
  double start = 0;
  for (unsigned i = 0;; i++) {
    r->theirs = atomic_load_explicit(r->head, memory_order_acquire);
    if (r->theirs != r->mine) return 1;
    if (atomic_load(r->ended) == 1) {
      r->theirs = atomic_load(r->head); /* ended, then head again */
      return r->theirs != r->mine;
    }
    if (i % 64 == 0) {
      double t = now_us();
      if (i == 0) start = t;
      if (t - start >= SPIN_US) {
        atomic_store(r->receiver_sleeping, 1);
        r->theirs = atomic_load(r->head);
        if (r->theirs != r->mine || atomic_load(r->ended) == 1) {
          atomic_store(r->receiver_sleeping, 0);
          continue;
        }
        futex_wait(r->receiver_sleeping, 1);
        if (peer_gone(r) && atomic_load(r->head) == r->mine) die("the sender is gone");
        continue;
      }
    }
    cpu_relax();
  }
}

static void store_tail(struct ring *r) {
  atomic_store(r->tail, r->mine); /* release, and sequentially consistent */
  wake_if_sleeping(r->sender_sleeping);
}

/* The next message, in place: 1 with *payload and *length, 0 once over.
 * ring_release() consumes it. */
static int ring_peek(struct ring *r, const uint8_t **payload, uint32_t *length) {
  for (;;) {
    if (r->theirs == r->mine && !wait_for_data(r)) return 0;
    uint64_t head = r->theirs, tail = r->mine;
    if (head < tail || head - tail > r->cap || (head & 7) || (tail & 7)) die("corrupt channel (head)");
    uint64_t pos = tail & (r->cap - 1);
    uint64_t to_end = r->cap - pos;
    uint32_t len, kind;
    memcpy(&len, r->data + pos, 4);
    memcpy(&kind, r->data + pos + 4, 4);
    if (kind == KIND_PADDING) {
      if (tail + to_end > head) die("corrupt channel (padding past head)");
      r->mine += to_end;
      /* Stored at once: a sender may have published this padding alone and
       * be waiting for its space. */
      store_tail(r);
      continue;
    }
    if (kind != KIND_MESSAGE) die("corrupt channel (kind)");
    uint64_t record = 8 + align8(len);
    if (record > to_end || tail + record > head) die("corrupt channel (length)");
    *payload = r->data + pos + 8;
    *length = len;
    r->pending = record;
    return 1;
  }
}

static void ring_release(struct ring *r) {
  r->mine += r->pending;
  r->pending = 0;
  store_tail(r);
}

/* ---- the checked messages ---------------------------------------------- */

static void fill_template(uint8_t *t, size_t len) {
  for (size_t i = 0; i < len; i++) t[i] = (uint8_t)(i >> 6);
}

static inline void stamp(uint8_t *m, size_t len, uint64_t seq) {
  if (len >= 8) memcpy(m, &seq, 8);
  if (len > 8) m[len - 1] = (uint8_t)seq;
}

static inline int check(const uint8_t *m, size_t len, uint64_t seq) {
  if (len < 8) return 1;
  uint64_t got;
  memcpy(&got, m, 8);
  if (got != seq) return 0;
  if (len > 8 && m[len - 1] != (uint8_t)seq) return 0;
  for (size_t i = 64; i + 1 < len; i += 64)
    if (m[i] != (uint8_t)(i >> 6)) return 0;
  return 1;
}

/* ---- the commands ------------------------------------------------------ */

static void consume(const char *name, int copy, double warm_us) {
  struct ring r;
  ring_open(&r, name);
  take_end(&r, OFF_RECEIVER_STATE);
  uint8_t *copied = copy ? malloc(r.cap) : NULL;
  const uint8_t *payload;
  uint32_t len;
  uint64_t seq = 0, mark_seq = 0, bytes_at_mark = 0, bytes = 0;
  double first = 0, mark = 0;
  while (ring_peek(&r, &payload, &len)) {
    const uint8_t *m = payload;
    if (copy) {
      memcpy(copied, payload, len);
      m = copied;
    }
    if (!check(m, len, seq)) {
      fprintf(stderr, "channel: message %llu failed its check\n", (unsigned long long)seq);
      exit(1);
    }
    ring_release(&r);
    seq++;
    bytes += len;
    if (seq == 1) first = now_us();
    if (!mark && seq % 64 == 0) {
      double t = now_us();
      if (t - first >= warm_us) mark = t, mark_seq = seq, bytes_at_mark = bytes;
    }
  }
  double end = now_us();
  if (!mark) mark = first, mark_seq = 1, bytes_at_mark = len;
  double seconds = (end - mark) / 1e6;
  printf("{\"messages\": %llu, \"measured\": %llu, \"seconds\": %.4f, \"msgsPerSec\": %.1f, \"GBs\": %.4f}\n",
         (unsigned long long)seq, (unsigned long long)(seq - mark_seq), seconds, (seq - mark_seq) / seconds,
         (bytes - bytes_at_mark) / seconds / 1e9);
  fflush(stdout);
  ring_close(&r);
}

static int bench(size_t size, double seconds, uint64_t cap, int copy) {
  char name[64];
  snprintf(name, sizeof name, "/psm_bench_c_chan_%d", (int)getpid());
  struct ring r;
  ring_create(&r, name, cap);
  double warm_us = seconds * 1e6 / 5 > 1e5 ? seconds * 1e6 / 5 : 1e5;
  pid_t child = fork();
  if (child == 0) {
    consume(name, copy, warm_us);
    _exit(0);
  }
  take_end(&r, OFF_SENDER_STATE);
  uint8_t *message = malloc(size ? size : 1);
  fill_template(message, size);
  double until = now_us() + warm_us + seconds * 1e6;
  for (uint64_t seq = 0;; seq++) {
    if (seq % 64 == 0 && now_us() >= until) break;
    stamp(message, size, seq);
    ring_send(&r, message, (uint32_t)size);
  }
  ring_end(&r);
  int status;
  waitpid(child, &status, 0);
  shm_unlink(name);
  ring_close(&r);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int pingpong(double seconds, uint64_t cap) {
  char there[64], back[64];
  snprintf(there, sizeof there, "/psm_bench_c_ping_%d", (int)getpid());
  snprintf(back, sizeof back, "/psm_bench_c_pong_%d", (int)getpid());
  struct ring out, in;
  ring_create(&out, there, cap);
  ring_create(&in, back, cap);
  pid_t child = fork();
  if (child == 0) {
    struct ring a, b;
    ring_open(&a, there);
    ring_open(&b, back);
    take_end(&a, OFF_RECEIVER_STATE);
    take_end(&b, OFF_SENDER_STATE);
    const uint8_t *payload;
    uint32_t len;
    while (ring_peek(&a, &payload, &len)) {
      ring_send(&b, payload, len);
      ring_release(&a);
    }
    ring_end(&b);
    _exit(0);
  }
  take_end(&out, OFF_SENDER_STATE);
  take_end(&in, OFF_RECEIVER_STATE);
  uint8_t message[64];
  fill_template(message, sizeof message);
  const uint8_t *payload;
  uint32_t len;
  double warm_until = now_us() + (seconds * 1e6 / 5 > 1e5 ? seconds * 1e6 / 5 : 1e5);
  double start = 0, until = 0;
  uint64_t measured_from = 0, seq;
  for (seq = 0;; seq++) {
    if (seq % 64 == 0) {
      double t = now_us();
      if (!start && t >= warm_until) start = t, until = t + seconds * 1e6, measured_from = seq;
      if (start && t >= until) break;
    }
    stamp(message, sizeof message, seq);
    ring_send(&out, message, sizeof message);
    if (!ring_peek(&in, &payload, &len) || len != sizeof message || !check(payload, len, seq)) die("ping-pong: bad reply");
    ring_release(&in);
  }
  double us = (now_us() - start) / (seq - measured_from);
  ring_end(&out);
  int status;
  waitpid(child, &status, 0);
  shm_unlink(there);
  shm_unlink(back);
  printf("{\"rounds\": %llu, \"usPerRoundTrip\": %.3f}\n", (unsigned long long)(seq - measured_from), us);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int send_named(const char *name, size_t size, uint64_t count, uint64_t cap) {
  struct ring r;
  if (cap) ring_create(&r, name, cap);
  else ring_open(&r, name);
  take_end(&r, OFF_SENDER_STATE);
  uint8_t *message = malloc(size ? size : 1);
  fill_template(message, size);
  for (uint64_t seq = 0; seq < count; seq++) {
    stamp(message, size, seq);
    ring_send(&r, message, (uint32_t)size);
  }
  ring_end(&r);
  ring_close(&r);
  return 0;
}

static int receive_named(const char *name, uint64_t cap) {
  struct ring r;
  if (cap) ring_create(&r, name, cap);
  else ring_open(&r, name);
  take_end(&r, OFF_RECEIVER_STATE);
  const uint8_t *payload;
  uint32_t len;
  uint64_t seq = 0, bytes = 0;
  while (ring_peek(&r, &payload, &len)) {
    if (!check(payload, len, seq)) {
      fprintf(stderr, "channel: message %llu failed its check\n", (unsigned long long)seq);
      return 1;
    }
    ring_release(&r);
    seq++;
    bytes += len;
  }
  printf("{\"messages\": %llu, \"bytes\": %llu}\n", (unsigned long long)seq, (unsigned long long)bytes);
  ring_close(&r);
  return 0;
}

int main(int argc, char **argv) {
  const char *command = argc > 1 ? argv[1] : "";
  if (!strcmp(command, "bench") && argc == 6)
    return bench(strtoull(argv[2], NULL, 10), atof(argv[3]), strtoull(argv[4], NULL, 10), !strcmp(argv[5], "copy"));
  if (!strcmp(command, "pingpong") && argc == 4) return pingpong(atof(argv[2]), strtoull(argv[3], NULL, 10));
  if (!strcmp(command, "send") && (argc == 5 || argc == 6))
    return send_named(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10), argc == 6 ? strtoull(argv[5], NULL, 10) : 0);
  if (!strcmp(command, "receive") && (argc == 3 || argc == 4)) return receive_named(argv[2], argc == 4 ? strtoull(argv[3], NULL, 10) : 0);
  fputs("usage: channel bench SIZE SECONDS CAPACITY view|copy | pingpong SECONDS CAPACITY |\n"
        "       send NAME SIZE COUNT [CAPACITY] | receive NAME [CAPACITY]\n",
        stderr);
  return 2;
}
