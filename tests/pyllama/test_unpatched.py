"""pyllama.unpatched.stdlib_for_import: an import that probes the OS (a subprocess, select.epoll)
works from an OS thread of a gevent-patched process, and the patching is back afterwards."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import ctypes.util, select, subprocess, sys
    from pyllama.unpatched import original, stdlib_for_import
    out = []
    def probe():
        try:
            with stdlib_for_import():
                out.append((ctypes.util.find_library("c") is not None, hasattr(select, "epoll")))
        except Exception as e:
            out.append(repr(e))
    def bare():
        try:
            ctypes.util.find_library("pthread")
            out.append("bare ok")
        except Exception as e:
            out.append(type(e).__name__)
    start, sleep = original("_thread", "start_new_thread"), original("time", "sleep")
    start(bare, ())
    while len(out) < 1:
        sleep(0.01)
    start(probe, ())
    while len(out) < 2:
        sleep(0.01)
    print(out, hasattr(select, "epoll"), subprocess.Popen.__module__)
""")


def test_os_probing_import_from_an_os_thread_of_a_patched_process(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # without the guard gevent's Popen refuses (the premise), with it the probe works and
    # sees the stdlib's select; afterwards gevent's patching is in place again
    assert done.stdout.strip() == "['TypeError', (True, True)] False gevent.subprocess", done.stdout
