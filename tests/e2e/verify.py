# SPDX-License-Identifier: GPL-2.0-or-later
"""Verifier of the Kemari e2e workload.

The guest workload (guest/workload.c, guest/record.h) writes record k at
offset k * 4096 with O_DIRECT|O_SYNC and, once the write has completed,
reports "k crc" over one TCP connection.  After a run, with every QEMU
stopped, the verifier asserts:

- the TCP stream carried 0, 1, 2, ... with no gap, no duplicate and no
  reset before the harness closed it;
- every reported (acknowledged) write is on disk, intact (magic, sequence
  number, CRC of the payload, and the CRC that was reported);
- the records on disk are contiguous: a prefix 0..M with M at least the
  last acknowledged record and no valid record after a hole.
"""

import os
import struct
import zlib

RECORD_SIZE = 4096
MAGIC = 0x4B4D5249


class StreamLog:
    """What the checker saw on the TCP connection."""

    def __init__(self):
        self.acked = []          # crc of record k at index k
        self.errors = []         # gap, duplicate, garbage
        self.reset = None        # reason the stream ended early, if it did
        self.closed_by_harness = False

    @property
    def count(self):
        return len(self.acked)

    def feed_line(self, line):
        """Account one "seq crc" line; return False once the stream is bad."""
        try:
            seq_s, crc_s = line.split()
            seq, crc = int(seq_s), int(crc_s, 16)
        except ValueError:
            self.errors.append("garbage on the stream: %r" % line[:40])
            return False
        if seq != len(self.acked):
            kind = "duplicate" if seq < len(self.acked) else "gap"
            self.errors.append("%s in TCP stream: expected record %d, got %d"
                               % (kind, len(self.acked), seq))
            return False
        self.acked.append(crc)
        return True


def read_record(buf):
    """Return (seq, ok) for one 4 KiB record, or None if the slot is empty."""
    magic, crc = struct.unpack_from("<II", buf, 0)
    if magic != MAGIC:
        return None if buf.count(0) == len(buf) else (-1, False)
    (seq,) = struct.unpack_from("<Q", buf, 8)
    return seq, zlib.crc32(buf[8:]) & 0xFFFFFFFF == crc


def data_extent(f):
    """End of the last data extent of a (sparse) file."""
    size = os.fstat(f.fileno()).st_size
    end, pos = 0, 0
    try:
        while pos < size:
            start = os.lseek(f.fileno(), pos, os.SEEK_DATA)
            pos = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            end = pos
    except OSError:
        pass            # ENXIO: no more data
    return end if end else size


def verify(image, log, max_errors=10):
    """Return the list of problems found; empty means the run is good."""
    problems = list(log.errors)
    if log.reset:
        problems.append("TCP stream ended before the harness closed it: %s"
                        % log.reset)
    if log.count == 0:
        problems.append("no write was acknowledged over TCP")

    on_disk = 0          # records 0..on_disk-1 valid and contiguous
    hole_at = None
    bad = []
    lost = 0             # acknowledged records missing, corrupt or different
    with open(image, "rb") as f:
        end = data_extent(f)
        nrec = (end + RECORD_SIZE - 1) // RECORD_SIZE
        f.seek(0)
        for k in range(max(nrec, log.count)):
            buf = f.read(RECORD_SIZE)
            if len(buf) < RECORD_SIZE:
                buf = buf.ljust(RECORD_SIZE, b"\0")
            rec = read_record(buf)
            if rec is None:
                if hole_at is None:
                    hole_at = k
                if k < log.count:
                    lost += 1
                    bad.append("acknowledged record %d is missing from disk" % k)
                continue
            seq, ok = rec
            if not ok or seq != k:
                lost += k < log.count
                bad.append("record %d on disk is corrupt (seq %d, crc %s)"
                           % (k, seq, "ok" if ok else "bad"))
                continue
            if k < log.count:
                (crc,) = struct.unpack_from("<I", buf, 4)
                if crc != log.acked[k]:
                    lost += 1
                    bad.append("record %d on disk differs from the one "
                               "acknowledged" % k)
                    continue
            if hole_at is not None:
                bad.append("record %d on disk follows a hole at %d"
                           % (k, hole_at))
                continue
            on_disk = k + 1
    problems += bad[:max_errors]
    if len(bad) > max_errors:
        problems.append("... and %d more disk problems" % (len(bad) - max_errors))
    summary = ("%d writes acknowledged over TCP, %d contiguous records on "
               "disk, %d lost, TCP %s"
               % (log.count, on_disk, lost,
                  "intact" if not (log.errors or log.reset) else "BROKEN"))
    return problems, summary


def make_record(seq):
    """Python twin of kr_fill() in guest/record.h (for self-tests)."""
    x = (seq * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF
    words = []
    for _ in range(16, RECORD_SIZE, 8):
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        words.append(x)
    body = struct.pack("<Q", seq) + struct.pack("<%dQ" % len(words), *words)
    crc = zlib.crc32(body) & 0xFFFFFFFF
    return struct.pack("<II", MAGIC, crc) + body, crc
