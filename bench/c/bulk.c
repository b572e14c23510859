/* Bulk in C, for reference, the same steps as the bulk rows of
 * bench/workloads.mjs: make a fresh object of N bytes (exclusive create,
 * unlink, ftruncate) and map it, timed as the map time; copy N bytes from
 * an ordinary buffer into it; copy them back out into another. Prints the
 * map time in milliseconds and both copies in GB/s. Built and run by
 * bench/run.mjs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : 256u << 20;
  /* Both ordinary buffers are filled first, so their pages exist before
   * timing, as Buffer.alloc's do in the JavaScript rows. */
  char *source = malloc(bytes), *target = malloc(bytes);
  if (!source || !target) return perror("malloc"), 1;
  memset(source, 0xab, bytes);
  memset(target, 0, bytes);

  char name[64];
  snprintf(name, sizeof name, "/psm_bench_c_bulk_%d", (int)getpid());
  double start = now();
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) return perror("shm_open"), 1;
  shm_unlink(name);
  if (ftruncate(fd, (off_t)bytes) != 0) return perror("ftruncate"), 1;
  char *mapped = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) return perror("mmap"), 1;
  double map_us = now() - start;

  start = now();
  memcpy(mapped, source, bytes);
  double write_us = now() - start;
  start = now();
  memcpy(target, mapped, bytes);
  double read_us = now() - start;
  if (memcmp(source, target, bytes) != 0) return fputs("bulk: the bytes read back differ\n", stderr), 1;

  munmap(mapped, bytes);
  close(fd);
  printf("{\"mapMs\": %.4f, \"writeGBs\": %.3f, \"readGBs\": %.3f}\n", map_us / 1e3, bytes / write_us / 1e3,
         bytes / read_us / 1e3);
  return 0;
}
