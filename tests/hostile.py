"""Run the CLI on hostile files, each case in its own process, memory- and time-bounded.

``Harness`` starts one worker process (``python -m tests.hostile``) that imports
the codec once and then forks a child per case: the child lowers its address
space limit (``RLIMIT_AS``: what it may allocate on top of what the worker had
mapped), runs ``icainr.cli.main`` and exits with its status; the worker waits
for it with a time limit (killing it past the limit: a hang), and reports the
exit status, what it printed on stderr, its peak resident memory (``wait4``) and
its seconds. Forking a warm worker costs milliseconds where a fresh interpreter
costs a second, so thousands of cases fit in a CI run.

``verdict(result, path, out)`` classifies a result: ``clean`` (exit 2, one line
``icainr: error: <path>: ...``, no traceback, no output written) or what went
wrong.
"""

import json
import os
import resource
import subprocess
import sys
import time

#: what a case may allocate beyond what the worker had mapped when it forked
EXTRA_ADDRESS_SPACE = 3 << 30
TIME_LIMIT = 60.0


def _child(argv, err_path):
    limit = _mapped_bytes() + EXTRA_ADDRESS_SPACE
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    rc = 1
    try:
        from nipype_icainr.cli import main

        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a traceback is exactly what the suite looks for
        import traceback

        traceback.print_exc()
        rc = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(rc)


def _mapped_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def run_case(argv, err_path, time_limit=TIME_LIMIT):
    """Fork, run ``argv`` in the child, wait; the result as a dict."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(argv, err_path)
    hang = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() - t0 > time_limit:
            os.kill(pid, 9)
            done, status, usage = os.wait4(pid, 0)
            hang = True
            break
        time.sleep(0.005)
    with open(err_path, errors="replace") as fh:
        stderr = fh.read()
    return {"rc": os.waitstatus_to_exitcode(status), "stderr": stderr, "hang": hang,
            "seconds": time.perf_counter() - t0, "peak_mb": usage.ru_maxrss / 1024.0}


def _worker():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # everything a case imports is imported once here, before any fork
    import nibabel  # noqa: F401
    import numpy  # noqa: F401

    import nipype_icainr.cli  # noqa: F401
    from nipype_icainr.codec import api  # noqa: F401
    from nipype_icainr.codec.factor import model  # noqa: F401
    from nipype_icainr.codec.lossless import model as _lossless  # noqa: F401

    try:
        import torch

        torch.set_num_threads(1)
        from nipype_icainr.codec.network import fit, net  # noqa: F401
    except ImportError:
        pass
    err_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hostile-{os.getpid()}.err")
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        result = run_case(request["argv"], err_path, request.get("time_limit", TIME_LIMIT))
        print(json.dumps(result), flush=True)
    os.unlink(err_path) if os.path.exists(err_path) else None


class Harness:
    """One worker process; ``run(argv)`` sends it a case and returns its result."""

    def __init__(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.hostile"], cwd=root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, argv, time_limit=TIME_LIMIT):
        self.proc.stdin.write(json.dumps({"argv": list(argv), "time_limit": time_limit})
                              + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def verdict(result, path, out=None):
    """``"clean"``, or what is wrong with a hostile case's result."""
    lines = [ln for ln in result["stderr"].splitlines() if ln.strip()]
    if result["hang"]:
        return "hang"
    if "Traceback" in result["stderr"]:
        return "traceback"
    if result["rc"] != 2:
        return f"exit {result['rc']}"
    if len(lines) != 1:
        return f"{len(lines)} lines"
    if not lines[0].startswith(f"icainr: error: {path}"):
        return "message does not name the file"
    if out is not None and os.path.exists(out):
        return "output written"
    return "clean"


if __name__ == "__main__":
    _worker()
