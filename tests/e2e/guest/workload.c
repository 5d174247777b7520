/*
 * Kemari e2e guest workload: durable, checksummed, sequence-numbered
 * disk writes, each reported over one long-lived TCP connection once the
 * write has completed.
 *
 * Record k (4096 bytes, written with O_DIRECT|O_SYNC at offset k * 4096):
 *   u32 magic, u32 crc32 (of bytes 8..4095), u64 seq, payload from seq
 *   and the time of the write (see kr_fill()).
 * After the write returns, the line "<seq> <crc32 in hex>\n" is sent to
 * the checker.  A write or socket error ends the program with a message:
 * it never reconnects, so a reset or a gap shows up at the checker.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "record.h"

static int connect_checker(const char *host, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int one = 1;
    int fd;
    int tries;

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "workload: bad checker address %s\n", host);
        exit(2);
    }
    /* The network may take a moment to come up; only the first connect
     * is retried, never a later one. */
    for (tries = 0; tries < 300; tries++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            perror("workload: socket");
            exit(2);
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        usleep(100 * 1000);
    }
    fprintf(stderr, "workload: cannot connect to %s:%d\n", host, port);
    exit(2);
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            printf("workload: connection lost: %s\n", strerror(errno));
            fflush(stdout);
            exit(3);
        }
        buf += n;
        len -= n;
    }
}

int main(int argc, char **argv)
{
    const char *dev, *host;
    uint64_t seq, count, max_records;
    void *buf;
    int port, disk, sock;
    off_t size;

    if (argc < 4) {
        fprintf(stderr, "usage: workload DEVICE HOST PORT [COUNT]\n");
        return 2;
    }
    dev = argv[1];
    host = argv[2];
    port = atoi(argv[3]);
    count = argc > 4 ? strtoull(argv[4], NULL, 0) : 0;

    disk = open(dev, O_RDWR | O_DIRECT | O_SYNC);
    if (disk < 0) {
        perror("workload: open disk");
        return 2;
    }
    size = lseek(disk, 0, SEEK_END);
    max_records = size / KR_SIZE;
    if (posix_memalign(&buf, KR_SIZE, KR_SIZE)) {
        return 2;
    }
    sock = connect_checker(host, port);
    printf("workload: started on %s, %llu records\n", dev,
           (unsigned long long)max_records);
    fflush(stdout);

    for (seq = 0; seq < max_records && (!count || seq < count); seq++) {
        char line[64];
        struct timespec now;
        uint32_t crc;
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        crc = kr_fill(buf, seq, now.tv_sec * 1000000000ull + now.tv_nsec);
        n = pwrite(disk, buf, KR_SIZE, (off_t)seq * KR_SIZE);

        if (n != KR_SIZE) {
            printf("workload: write %llu failed: %s\n",
                   (unsigned long long)seq, n < 0 ? strerror(errno) : "short");
            fflush(stdout);
            return 3;
        }
        n = snprintf(line, sizeof(line), "%llu %08x\n",
                     (unsigned long long)seq, crc);
        send_all(sock, line, n);
    }
    printf("workload: done, %llu records\n", (unsigned long long)seq);
    fflush(stdout);
    /* Keep the connection open: the checker decides when the run ends. */
    for (;;) {
        pause();
    }
}
