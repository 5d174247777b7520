/*
 * The on-disk record of the Kemari e2e workload.  tests/e2e/verify.py
 * reads the same layout; keep the two in step.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KEMARI_E2E_RECORD_H
#define KEMARI_E2E_RECORD_H

#include <stdint.h>
#include <string.h>

#define KR_SIZE  4096
#define KR_MAGIC 0x4b4d5249u          /* "KMRI" */

/* Plain bitwise CRC-32 (IEEE, as zlib.crc32), small and dependency free. */
static inline uint32_t kr_crc32(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;
    size_t i;
    int b;

    for (i = 0; i < len; i++) {
        crc ^= p[i];
        for (b = 0; b < 8; b++) {
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
        }
    }
    return ~crc;
}

/*
 * Fill @buf with record @seq and return its checksum.  The payload
 * depends on @nonce too (the workload passes the time), so that record
 * k written again by a guest resumed from an older checkpoint differs
 * from the record k reported before: a report that left before its
 * checkpoint was committed then shows up as a checksum mismatch.
 */
static inline uint32_t kr_fill(void *buf, uint64_t seq, uint64_t nonce)
{
    uint8_t *p = buf;
    uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1 + nonce;
    uint32_t magic = KR_MAGIC, crc;
    size_t i;

    memcpy(p + 8, &seq, 8);
    for (i = 16; i < KR_SIZE; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    crc = kr_crc32(p + 8, KR_SIZE - 8);
    memcpy(p, &magic, 4);
    memcpy(p + 4, &crc, 4);
    return crc;
}

#endif
