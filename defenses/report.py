"""Markdown of defense results: one row per model (defend.py's table, reproduce.py's Table 5
defense table), and the pruning curve."""

COLUMNS = ('MAP', 't-MAP', 'FT MAP', 'FT t-MAP', 'FP pruned', 'FP MAP', 'FP t-MAP', 'NC index',
           'NC flagged', 'NC-collapse L1', 'STRIP AUROC', 'STRIP FAR@1/5%', 'STRIP-label AUROC',
           'SentiNet AUROC', 'SentiNet FAR@1/5%')


def _f(v, fmt='.3f'):
    return '-' if v is None else format(v, fmt)


def row(name, r):
    """Cells of one model's results dict {defense: result}; '-' where a defense was not run."""
    ft, fp, nc, co = r.get('finetune'), r.get('fineprune'), r.get('nc'), r.get('nc_collapse')
    st, sn = r.get('strip'), r.get('sentinet')
    before = (ft or fp or {}).get('before', {})
    cells = [_f(before.get('map'), '.4f'), _f(before.get('t_map'), '.4f')]
    cells += [_f(ft['after']['map'], '.4f'), _f(ft['after']['t_map'], '.4f')] if ft else ['-'] * 2
    cells += ([f"{fp['pruned_fraction']:.2f}", _f(fp['after']['map'], '.4f'),
               _f(fp['after']['t_map'], '.4f')] if fp else ['-'] * 3)
    if nc:
        fl = ','.join(str(k) for k in nc['flagged_classes']) or 'none'
        cells += [_f(nc['anomaly_index'], '.2f'), fl]
    else:
        cells += ['-'] * 2
    cells += [(_f(co['norm'], '.1f') + ('' if co['success'] else ' (not reached)')) if co else '-']
    if st:
        b = st['h_bit']
        cells += [_f(b['auroc']), f"{b['far_at_frr1']:.2f} / {b['far_at_frr5']:.2f}",
                  _f(st['h_label']['auroc'])]
    else:
        cells += ['-'] * 3
    cells += ([_f(sn['auroc']), f"{sn['far_at_frr1']:.2f} / {sn['far_at_frr5']:.2f}"] if sn
              else ['-'] * 2)
    return f"| {name} | " + ' | '.join(cells) + ' |'


def table(rows):
    """rows: [(name, results dict)] -> markdown table."""
    head = '| model | ' + ' | '.join(COLUMNS) + ' |'
    sep = '|' + '---|' * (len(COLUMNS) + 1)
    return '\n'.join([head, sep] + [row(n, r) for n, r in rows])


def curve(fp):
    lines = ['| pruned fraction | MAP | t-MAP |', '|---|---|---|']
    lines += [f"| {p['fraction']:.2f} | {p['map']:.4f} | {p['t_map']:.4f} |" for p in fp['curve']]
    return '\n'.join(lines)
