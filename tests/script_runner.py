"""Runs the project's scripts for the tests as `python script.py args` would, without paying
Python's and PyTorch's start-up (about 2 s on a 2-core CPU) for each of the suite's script runs.

One helper process imports the heavy third-party libraries (torch, torchvision, lpips, numpy, ...)
once and never runs a tensor operation; each script then runs in a process forked from it, with the
asked working directory, environment, argv and stdout/stderr files, as `__main__` (runpy), and its
exit status is what `python script.py` would return (SystemExit as the interpreter reads it; an
uncaught exception prints its traceback and exits 1). Project modules are never imported by the
helper, so each run imports them afresh, as a new interpreter does. OMP_NUM_THREADS in the asked
environment sets torch's thread count (a fresh interpreter reads it at start-up).

`run_script` returns a subprocess.CompletedProcess (text, universal newlines) and raises
subprocess.TimeoutExpired after killing the run's process group, as subprocess.run does.
BADHASH_TEST_FORK=0 runs every script as a real subprocess instead (same results, slower), and so
does any platform but Linux (fork after importing torch is not safe on macOS); a command that is
not a `.py` file runs as a subprocess anyway.
"""
import atexit
import io
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRELOAD = ('numpy', 'PIL.Image', 'tqdm', 'torch', 'torchvision', 'lpips', 'scipy.stats')


# ------------------------------------------------------------------------------------------------
# the pytest side
# ------------------------------------------------------------------------------------------------

_server = None


def _start():
    global _server
    # no OMP_NUM_THREADS nor PYTHONWARNINGS: each run sets its own from the environment it asks for
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'PYTHONWARNINGS')}
    _server = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    line = _server.stdout.readline()
    if line.strip() != 'ready':
        _server.kill()
        _server = None
        raise RuntimeError(f'script_runner: the helper did not start ({line!r})')


@atexit.register
def _stop():
    global _server
    if _server is not None and _server.poll() is None:
        _server.stdin.close()
        try:
            _server.wait(10)
        except subprocess.TimeoutExpired:
            _server.kill()
    _server = None


def _decode(path):
    """The file's bytes as subprocess.run(text=True) would give them (universal newlines)."""
    with open(path, 'rb') as f:
        return io.TextIOWrapper(io.BytesIO(f.read())).read()


def _use_fork(script):
    return (os.environ.get('BADHASH_TEST_FORK', '1') != '0' and sys.platform.startswith('linux')
            and script.endswith('.py'))


def run_script(args, env=None, cwd=ROOT, timeout=300, threads='1'):
    """Run `python args[0] args[1:]` (args[0] a script path, relative to cwd or absolute) with
    os.environ, PYTHONWARNINGS=ignore, OMP_NUM_THREADS=threads (None: os.environ's, if any) and
    `env` over them."""
    cmd = [sys.executable] + [str(a) for a in args]
    e = dict(os.environ, PYTHONWARNINGS='ignore')
    if threads is not None:
        e['OMP_NUM_THREADS'] = str(threads)
    e.update(env or {})
    if not _use_fork(cmd[1]):
        return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if _server is None or _server.poll() is not None:
        _start()
    fd_out, out = tempfile.mkstemp(prefix='run_out_')
    fd_err, err = tempfile.mkstemp(prefix='run_err_')
    os.close(fd_out), os.close(fd_err)
    try:
        req = dict(argv=cmd[1:], cwd=str(cwd), env=e, stdout=out, stderr=err)
        _server.stdin.write(json.dumps(req) + '\n')
        _server.stdin.flush()
        pid = json.loads(_server.stdout.readline())['pid']
        deadline = time.time() + timeout
        while True:
            ready, _, _ = select.select([_server.stdout], [], [], max(0.0, deadline - time.time()))
            if ready:
                rc = json.loads(_server.stdout.readline())['rc']
                break
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            json.loads(_server.stdout.readline())  # the helper reaps it
            raise subprocess.TimeoutExpired(cmd, timeout, output=_decode(out), stderr=_decode(err))
        return subprocess.CompletedProcess(cmd, rc, _decode(out), _decode(err))
    finally:
        os.remove(out), os.remove(err)


# ------------------------------------------------------------------------------------------------
# the helper process
# ------------------------------------------------------------------------------------------------

def _exit_code(e):
    """The interpreter's reading of SystemExit(e.code)."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _child(req):
    code = 1
    try:
        os.setpgid(0, 0)  # a timeout kills the script with its workers and subprocesses
        os.chdir(req['cwd'])
        os.environ.clear()
        os.environ.update(req['env'])
        for fd, path in ((1, req['stdout']), (2, req['stderr'])):
            f = os.open(path, os.O_WRONLY | os.O_TRUNC)
            os.dup2(f, fd)
            os.close(f)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        import warnings
        warnings.filters[:] = _DEFAULT_FILTERS  # a fresh interpreter's, then PYTHONWARNINGS as it reads it
        sys.warnoptions[:] = [w for w in req['env'].get('PYTHONWARNINGS', '').split(',') if w]
        warnings._processoptions(sys.warnoptions)
        warnings._filters_mutated()
        import torch
        if req['env'].get('OMP_NUM_THREADS'):
            torch.set_num_threads(int(req['env']['OMP_NUM_THREADS']))
        import runpy
        script = req['argv'][0]
        sys.argv = list(req['argv'])
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name='__main__')
        code = 0
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


_DEFAULT_FILTERS = []


def serve():
    import importlib
    import warnings
    _DEFAULT_FILTERS[:] = warnings.filters
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    print('ready', flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        print(json.dumps({'pid': pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({'rc': os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == '__main__':
    serve()
