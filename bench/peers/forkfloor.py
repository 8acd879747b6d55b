"""The cost of forking a CPython interpreter, with nothing served.

usage: forkfloor.py [COUNT]
Imports what bench/peers/pyecho.py's servers import (socketserver and the
echo handlers), freezes the heap the way sockhost's Python plugin does
(gc.collect(); gc.freeze()), then COUNT times: os.fork(), the child calls
os._exit(0) at once, the parent waits for it. Prints one line: the CPU time
(user + system, parent and children) per fork in microseconds.

Every fork-per-request server of this interpreter pays at least this per
request, whatever its accept loop costs: the kernel copies the page tables
of the interpreter's heap, the child's at-fork hooks write (copy) pages, and
the exit tears it all down. bench/python-cpu.sh divides ForkingTCPServer's
CPU per request by this figure: the most any such server can beat it by.
"""
import gc
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyecho  # noqa: E402,F401  (the heap the servers fork)


def cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    gc.collect()
    gc.freeze()
    start = cpu_seconds()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    print(f"{(cpu_seconds() - start) / count * 1e6:.0f}")


if __name__ == "__main__":
    main()
