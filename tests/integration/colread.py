#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# colread.py: read a file the way a columnar engine (DuckDB, Arrow) reads the columns a
# query needs from Parquet row groups: per row group a 256-byte page header read, then
# the column chunks wanted, each one pread; the row groups split between THREADS threads,
# each with its own file descriptor, as DuckDB does. Every byte is checked against REF.
#
#   colread.py FILE REF RG_SIZE CHUNKS THREADS
#     CHUNKS: "start:len+start:len..." offsets of the wanted chunks inside a row group
# Prints "read BYTES in N preads"; exit 0 when every byte matched, 1 on a mismatch.
import os, sys, threading

path, ref, rg, chunks, nthreads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
chunks = [tuple(int(x) for x in c.split(':')) for c in chunks.split('+')]
size = os.path.getsize(ref)
nrg = size // rg
bad = []
total = [0, 0]
lock = threading.Lock()

def worker(k):
    fd = os.open(path, os.O_RDONLY)
    rfd = os.open(ref, os.O_RDONLY)
    try:
        for g in range(k, nrg, nthreads):
            for start, ln in chunks:
                off = g * rg + start
                hdr = os.pread(fd, 256, off - 256)  # the page header before the chunk
                data = os.pread(fd, ln, off)
                if hdr + data != os.pread(rfd, 256 + ln, off - 256):
                    with lock:
                        bad.append(off)
                with lock:
                    total[0] += 256 + ln
                    total[1] += 2
    finally:
        os.close(fd)
        os.close(rfd)

ts = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("read %d in %d preads" % (total[0], total[1]))
if bad:
    print("MISMATCH at offsets %s" % bad[:5], file=sys.stderr)
    sys.exit(1)
