/* Ping-pong in C between two processes through one word of a shared
 * mapping, with futex sleep/wake, optionally spinning first for up to
 * SPIN_US microseconds (as posix-shm's wait does, 50). Prints the round
 * trip in microseconds. Usage: pingpong ROUNDS SPIN_US */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double spin_us;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void wait_while(_Atomic int *word, int value) {
  if (spin_us > 0) {
    double start = now_us();
    for (unsigned i = 1;; i++) {
      if (atomic_load(word) != value) return;
      __builtin_ia32_pause();
      if (i % 64 == 0 && now_us() - start >= spin_us) break;
    }
  }
  while (atomic_load(word) == value) syscall(SYS_futex, word, FUTEX_WAIT, value, NULL, NULL, 0);
}

static void bump_and_wake(_Atomic int *word) {
  atomic_fetch_add(word, 1);
  syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 100000;
  spin_us = argc > 2 ? atof(argv[2]) : 0;
  _Atomic int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (fork() == 0) {
    for (long i = 0; i < rounds; i++) {
      wait_while(word, 2 * (int)i);
      bump_and_wake(word);
    }
    _exit(0);
  }
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < rounds; i++) {
    bump_and_wake(word);
    wait_while(word, 2 * (int)i + 1);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  wait(NULL);
  double us = ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3) / rounds;
  printf("{\"usPerRoundTrip\": %.3f}\n", us);
  return 0;
}
