/*
 * hog TOTAL_MIB [STEP_MIB [STEP_MS]]: grows by STEP_MIB every STEP_MS up to TOTAL_MIB, writing every page
 * so the memory is really charged, then holds it, printing a heartbeat each second. The VM tests use it as
 * a memory hog (OOM, memory.high, parent budget, governor) and, holding, as a service that must survive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: hog TOTAL_MIB [STEP_MIB [STEP_MS]]\n");
    return 2;
  }
  long total = atol(argv[1]), step = argc > 2 ? atol(argv[2]) : total, ms = argc > 3 ? atol(argv[3]) : 0;
  if (step <= 0) step = total;
  setvbuf(stdout, NULL, _IOLBF, 0);
  double t0 = now();
  long have = 0;
  while (have < total) {
    long n = step < total - have ? step : total - have;
    size_t bytes = (size_t)n << 20;
    char *p = malloc(bytes);
    if (p == NULL) {
      printf("hog: malloc failed at %ld MiB\n", have);
      break;
    }
    for (size_t i = 0; i < bytes; i += 4096) p[i] = (char)(i >> 12);
    have += n;
    printf("hog: %ld MiB after %.2f s\n", have, now() - t0);
    if (ms > 0) usleep(ms * 1000);
  }
  for (;;) {
    printf("hog: holding %ld MiB at %.0f s\n", have, now() - t0);
    sleep(1);
  }
}
