/*
 * Kemari e2e guest memory load: dirty MB megabytes of memory, one byte
 * per 4 KiB page, over and over, PAGES_PER_MS pages per millisecond.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 32;
    long rate = argc > 2 ? strtol(argv[2], NULL, 0) : 64;
    size_t pages = mb << 8, i = 0;
    uint8_t *mem = calloc(pages, 4096);
    struct timespec ms = { 0, 1000 * 1000 };

    if (!mem) {
        perror("dirty: calloc");
        return 2;
    }
    printf("dirty: started, %zu MB, %ld pages/ms\n", mb, rate);
    fflush(stdout);
    for (;;) {
        for (long n = 0; n < rate; n++) {
            mem[(i++ % pages) * 4096]++;
        }
        nanosleep(&ms, NULL);
    }
}
