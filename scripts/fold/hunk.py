#!/usr/bin/env python3
# hunk.py PATCH N: the Nth hunk of PATCH, with its file header
import sys

patch, want = sys.argv[1], int(sys.argv[2])
files = []
for line in open(patch).read().split('\n'):
    if line.startswith('diff --git'):
        files.append([[line], []])
    elif not files:
        continue
    elif line.startswith('@@'):
        files[-1][1].append([line])
    elif files[-1][1]:
        files[-1][1][-1].append(line)
    else:
        files[-1][0].append(line)
k = 0
for head, hunks in files:
    for h in hunks:
        k += 1
        if k == want:
            while h and h[-1] == '':
                h = h[:-1]
            print('\n'.join(head + h))
