#!/usr/bin/env python3
"""Spawning through a procforge server from Python, with ctypes and the C API
(include/procforge/procforge_client.h).

    procforge serve --socket /tmp/pf.sock &
    python3 examples/server_client.py /tmp/pf.sock [path/to/libprocforge.so]
"""
import ctypes
import sys

sock = sys.argv[1].encode()
lib = ctypes.CDLL(sys.argv[2] if len(sys.argv) > 2 else "libprocforge.so.0")
lib.procforge_client_connect.restype = ctypes.c_void_p
lib.procforge_client_connect.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
lib.procforge_client_close.argtypes = [ctypes.c_void_p]
lib.procforge_client_spawn.restype = ctypes.c_int
lib.procforge_client_spawn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p),
                                       ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_size_t]
lib.procforge_client_wait.restype = ctypes.c_int
lib.procforge_client_wait.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]

err = ctypes.create_string_buffer(512)
client = lib.procforge_client_connect(sock, err, len(err))
if not client:
    sys.exit("connect: " + err.value.decode())


def run(*argv, warm=False):
    """Runs argv through the server; returns its shell status (or the failure's)."""
    args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    status = ctypes.c_int(0)
    pid = lib.procforge_client_spawn(client, args, None, None, int(warm), None, ctypes.byref(status), err, len(err))
    if pid < 0:
        print(f"{argv[0]}: {err.value.decode()} (status {status.value})")
        return status.value
    return lib.procforge_client_wait(client, pid, err, len(err))


print("exit 3 ->", run("sh", "-c", "exit 3"))
print("missing ->", run("/nonexistent/program"))
print("warm echo ->", run("echo", "hello from a warm instance", warm=True))
lib.procforge_client_close(client)
