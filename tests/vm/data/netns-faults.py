#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# netns-faults.py: creates network namespaces while the kernel's fault injection fails the
# Nth allocation of the creating task (N = 1, 2, ...), until a creation passes every
# allocation. Each attempt runs in a child process (fail-nth is per task) that unshares its
# network namespace and exits (the namespace then goes away). Prints one line:
#   "attempts A failed F absorbed B errnos {ERRNO: COUNT, ...}"
# (a failed allocation may surface as another errno than ENOMEM, e.g. from an ID allocator).
import ctypes
import errno
import os
import sys
import threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
failed = absorbed = 0
errnos = {}


def attempt(n, result):
    fd = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    os.pwrite(fd, str(n).encode(), 0)
    rc = libc.unshare(CLONE_NEWNET)
    err = ctypes.get_errno()
    left = int(os.pread(fd, 16, 0).decode().strip() or "0")
    os.pwrite(fd, b"0", 0)
    os.close(fd)
    # 0: created, none left to fail; 1: created after an absorbed failure; else 100 + errno.
    result.append((0 if left else 1) if rc == 0 else 100 + min(err, 150))


for n in range(1, 100000):
    result = []
    t = threading.Thread(target=attempt, args=(n, result))
    t.start()
    t.join()
    code = result[0] if result else -1
    if code == 0:
        print(f"attempts {n} failed {failed} absorbed {absorbed} errnos {errnos}")
        sys.exit(0)
    if code == 1:
        absorbed += 1
    elif code >= 100:
        failed += 1
        name = errno.errorcode.get(code - 100, str(code - 100))
        errnos[name] = errnos.get(name, 0) + 1
    else:
        print(f"attempt {n}: the thread died")
        sys.exit(1)
print("no attempt got through")
sys.exit(1)
