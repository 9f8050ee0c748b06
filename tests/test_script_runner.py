"""tests/script_runner.py: a script run from the forked helper behaves as `python script.py` does
(exit status, stdout, stderr, argv, working directory, environment, threads, warnings, timeout)."""
import os
import subprocess
import textwrap
import time

import pytest

from script_runner import run_script

PROBE = textwrap.dedent('''
    import os, sys, warnings
    import torch
    print('argv', sys.argv[1:], 'cwd', os.path.basename(os.getcwd()), 'name', __name__)
    print('env', os.environ.get('PROBE_VALUE'), 'threads', torch.get_num_threads())
    print('path0', os.path.basename(sys.path[0]))
    warnings.warn('probe warning', UserWarning)
    sys.stderr.write('to stderr\\r\\n')
    mode = sys.argv[1]
    if mode == 'raise':
        raise ValueError('probe failure')
    if mode == 'sleep':
        import time
        time.sleep(30)
    sys.exit({'ok': None, 'code': 3, 'message': 'error: one line'}[mode])
''')


@pytest.fixture
def probe(tmp_path):
    (tmp_path / 'sub').mkdir()
    path = tmp_path / 'sub' / 'probe.py'
    path.write_text(PROBE)
    return path


def _both(monkeypatch, args, **kw):
    out = {}
    for fork in ('1', '0'):
        monkeypatch.setenv('BADHASH_TEST_FORK', fork)
        out[fork] = run_script(args, **kw)
    return out['1'], out['0']


@pytest.mark.parametrize('mode,rc', [('ok', 0), ('code', 3), ('message', 1), ('raise', 1)])
def test_forked_run_matches_a_subprocess(probe, tmp_path, monkeypatch, mode, rc):
    forked, plain = _both(monkeypatch, [probe, mode, 'x y'], cwd=tmp_path, env={'PROBE_VALUE': 'v1'},
                          threads='1')
    assert forked.returncode == plain.returncode == rc
    assert forked.stdout == plain.stdout
    assert "argv ['%s', 'x y'] cwd %s name __main__" % (mode, tmp_path.name) in forked.stdout
    assert 'env v1 threads 1' in forked.stdout and 'path0 sub' in forked.stdout
    # warnings ignored by default (PYTHONWARNINGS=ignore); \r\n read as \n, as text=True does
    assert forked.stderr.startswith('to stderr\n') and plain.stderr.startswith('to stderr\n')
    if mode == 'message':
        assert forked.stderr == plain.stderr == 'to stderr\nerror: one line\n'
    if mode == 'raise':
        for p in (forked, plain):
            assert 'Traceback' in p.stderr and p.stderr.endswith('ValueError: probe failure\n')


def test_threads_and_warnings_follow_the_asked_environment(probe, tmp_path, monkeypatch):
    forked, plain = _both(monkeypatch, [probe, 'ok'], cwd=tmp_path, threads='2',
                          env={'PYTHONWARNINGS': 'default'})
    for p in (forked, plain):
        assert p.returncode == 0 and 'threads 2' in p.stdout
        assert 'UserWarning: probe warning' in p.stderr


def test_timeout_kills_the_run(probe, tmp_path, monkeypatch):
    monkeypatch.setenv('BADHASH_TEST_FORK', '1')
    t = time.time()
    with pytest.raises(subprocess.TimeoutExpired):
        run_script([probe, 'sleep'], cwd=tmp_path, timeout=2)
    assert time.time() - t < 20
    # the helper goes on serving
    assert run_script([probe, 'code'], cwd=tmp_path).returncode == 3
    assert not [l for l in os.popen('ps -eo args').read().splitlines() if str(probe) in l]
