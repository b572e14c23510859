/* The lifecycle cycle in C, for reference: exclusive create, ftruncate
 * 4096, map, touch one byte, unmap, close, unlink. Prints microseconds per
 * cycle. Built and run by bench/run.mjs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 20000;
  char name[64];
  double start = now();
  for (long i = 0; i < cycles; i++) {
    snprintf(name, sizeof name, "/psm_bench_c_%d_%ld", (int)getpid(), i);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return perror("shm_open/ftruncate"), 1;
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return perror("mmap"), 1;
    p[0] = 1;
    munmap(p, 4096);
    close(fd);
    shm_unlink(name);
  }
  printf("{\"usPerCycle\": %.3f}\n", (now() - start) / cycles);
  return 0;
}
