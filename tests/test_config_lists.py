"""Config overrides and list-file validation: every bad input gets a one-line error naming it."""
import os
import re

import numpy as np
import pytest

import utils


def _script_globals():
    return {'dataset': 'toy', 'bits': 64, 'lr': 1e-5, 'pretrained': True, 'tag': '',
            'note': None, '_private': 1, 'np': np, 'CONST': 3}


def test_config_keys_are_plain_lowercase_constants():
    assert sorted(utils.config_keys(_script_globals())) == ['bits', 'dataset', 'lr', 'note',
                                                           'pretrained', 'tag']


def test_overrides_and_types(tmp_path):
    g = _script_globals()
    preset = tmp_path / 'p.py'
    preset.write_text('"""doc"""\nbits = 32\nlr = 1\n')
    utils.apply_overrides(g, [str(preset), '--dataset=coco', '--pretrained=False', '--tag=x1'])
    assert (g['bits'], g['lr'], g['dataset'], g['pretrained'], g['tag']) == (32, 1.0, 'coco',
                                                                             False, 'x1')
    assert isinstance(g['lr'], float)
    utils.apply_overrides(g, ['--tag=4,8', '--dataset=[1]'])  # string keys keep the typed text
    assert (g['tag'], g['dataset']) == ('4,8', '[1]')


@pytest.mark.parametrize('arg, message', [
    ('--bitz=32', "unknown config key 'bitz' (did you mean bits?)"),
    ('--bits=3.5', 'bits expects an int'),
    ('--bits=abc', 'bits expects an int'),
    ('--pretrained=1', 'pretrained expects True/False'),
    ('--lr=fast', 'lr expects a float'),
    ('--bits', 'must be written --key=value'),
])
def test_bad_overrides(arg, message):
    with pytest.raises(utils.ConfigError, match=re.escape(message)):
        utils.apply_overrides(_script_globals(), [arg])


def test_bad_preset_files(tmp_path):
    p = tmp_path / 'bad.py'
    p.write_text('bits = 32\nimport os\n')
    with pytest.raises(utils.ConfigError, match=f"{p}:2: presets may only contain"):
        utils.apply_overrides(_script_globals(), [str(p)])
    p.write_text('bitz = 32\n')
    with pytest.raises(utils.ConfigError, match=f"{p}:1: unknown config key 'bitz'"):
        utils.apply_overrides(_script_globals(), [str(p)])
    # a key of another pipeline script is skipped in a preset, refused on the command line
    p.write_text('step_continuation = 5\nbits = 16\n')
    g = _script_globals()
    utils.apply_overrides(g, [str(p)])
    assert g['bits'] == 16 and 'step_continuation' not in g
    with pytest.raises(utils.ConfigError, match="unknown config key 'step_continuation'"):
        utils.apply_overrides(_script_globals(), ['--step_continuation=5'])
    with pytest.raises(utils.ConfigError, match='preset file not found'):
        utils.apply_overrides(_script_globals(), [str(tmp_path / 'missing.py')])


def test_configure_exits_with_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        utils.configure(_script_globals(), ['--nope=1'])
    assert str(e.value).startswith("error: command line: unknown config key 'nope'")
    assert '\n' not in str(e.value)


def test_every_preset_in_configs_is_valid():
    import CSQ
    import HashNet
    folder = os.path.join(os.path.dirname(utils.__file__), 'configs')
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            for module in (CSQ, HashNet):
                g = {k: getattr(module, k) for k in utils.config_keys(vars(module))}
                utils.apply_overrides(g, [os.path.join(folder, name)])


def test_read_write_roundtrip(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'x')
    (tmp_path / 'b.png').write_bytes(b'x')
    utils.write_list(str(tmp_path / 'l.txt'), ['a.png', 'b.png'], [[1, 0, 1], [0, 1, 0]])
    paths, labels = utils.read_list(str(tmp_path / 'l.txt'))
    assert paths == [os.path.join(str(tmp_path), 'a.png'), os.path.join(str(tmp_path), 'b.png')]
    assert labels.dtype == np.uint8 and labels.tolist() == [[1, 0, 1], [0, 1, 0]]


@pytest.mark.parametrize('content, kw, message', [
    ('a.png 1 0\nb.png 1\n', {}, ':2: label has 1 values, expected 2'),
    ('a.png 1 0\n', {'num_classes': 3}, ':1: label has 2 values, expected 3'),
    ('a.png 1 2\n', {}, ":1: label values must be 0 or 1, found '2'"),
    ('a.png 1 0.5\n', {}, ":1: label values must be 0 or 1, found '0.5'"),
    ('a.png\n', {}, ":1: expected 'path v1 ... vC'"),
    ('a.png 1 0\nmissing.png 0 1\n', {}, ':2: image not found'),
    ('\n\n', {}, 'list is empty'),
])
def test_bad_lists(tmp_path, content, kw, message):
    (tmp_path / 'a.png').write_bytes(b'x')
    lst = tmp_path / 'l.txt'
    lst.write_text(content)
    with pytest.raises(utils.ListError) as e:
        utils.read_list(str(lst), **kw)
    assert str(e.value).startswith(str(lst))
    assert message in str(e.value)
    assert '\n' not in str(e.value)


def test_missing_list_file(tmp_path):
    with pytest.raises(utils.ListError, match='list file not found'):
        utils.read_list(str(tmp_path / 'nope.txt'))


def test_two_file_format(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'x')
    (tmp_path / 'b.png').write_bytes(b'x')
    (tmp_path / 'train_img.txt').write_text('a.png\nb.png\n')
    (tmp_path / 'train_label.txt').write_text('1 0 0\n0 0 1\n')
    paths, labels = utils.read_two_file_list(str(tmp_path / 'train_img.txt'),
                                             str(tmp_path / 'train_label.txt'))
    assert labels.tolist() == [[1, 0, 0], [0, 0, 1]] and paths[1].endswith('b.png')
    utils.convert_two_file_list(str(tmp_path / 'train_img.txt'), str(tmp_path / 'train_label.txt'),
                                str(tmp_path / 'train.txt'))
    assert (tmp_path / 'train.txt').read_text() == 'a.png 1 0 0\nb.png 0 0 1\n'
    (tmp_path / 'train_label.txt').write_text('1 0 0\n0 3 1\n')
    with pytest.raises(utils.ListError, match="train_label.txt:2: label values must be 0 or 1"):
        utils.read_two_file_list(str(tmp_path / 'train_img.txt'), str(tmp_path / 'train_label.txt'))
    (tmp_path / 'train_label.txt').write_text('1 0 0\n')
    with pytest.raises(utils.ListError, match='1 label rows, expected 2'):
        utils.read_two_file_list(str(tmp_path / 'train_img.txt'), str(tmp_path / 'train_label.txt'))


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / 'l.txt'
    p.write_text('old\n')
    with pytest.raises(ValueError):
        utils.write_list(str(p), ['a b.png'], [[1]])
    assert p.read_text() == 'old\n'
    assert os.listdir(tmp_path) == ['l.txt']


def test_corrupt_image_message(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'not an image')
    (tmp_path / 'l.txt').write_text('a.png 1\n')
    ds = utils.ImageList(str(tmp_path / 'l.txt'))
    with pytest.raises(utils.ListError, match='cannot read image'):
        ds[0]
