"""Markdown of defense results: one row per model (defend.py's table, reproduce.py's Table 5
defense table), and the pruning curve."""

# below this t-MAP gain over the clean control there is no backdoor to repair: the share of the gap
# closed is not reported (a gain of 0.002 made a -2922% share); non-implanting attacks measure
# +0.002 to +0.04 on the toy (docs/RESULTS.md), so 0.05 (our choice)
MIN_GAP = 0.05

COLUMNS = ('MAP', 't-MAP', 'FT MAP', 'FT t-MAP', 'FP pruned', 'FP MAP', 'FP t-MAP', 'NC index',
           'NC flagged', 'TABOR index', 'TABOR flagged', 'NC-collapse L1', 'STRIP AUROC',
           'STRIP FAR@1/5%', 'STRIP-label AUROC',
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
    for x in (nc, r.get('tabor')):
        if x:
            fl = ','.join(str(k) for k in x['flagged_classes']) or 'none'
            cells += [_f(x['anomaly_index'], '.2f'), fl]
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


def summary(model, control, target):
    """Plain-language reading of the table (README "Defenses"): which defense caught or repaired the
    model, measured against the clean control where it has one. Returns (lines, figures)."""
    lines, fig = [], {}
    for key, label in (('nc', 'Neural Cleanse'), ('tabor', 'TABOR')):
        nc = model.get(key)
        if not nc:
            continue
        fig[f'{key}_statistic'] = nc['statistic']
        fig[f'{key}_index'] = nc['anomaly_index']
        fig[f'{key}_target_flagged'] = target in nc['flagged_classes']
        line = (f"{label} ({nc['statistic']}): anomaly index {nc['anomaly_index']:.2f} "
                f"(flags above {nc['threshold']:g}), flagged classes "
                f"{nc['flagged_classes'] or 'none'}, target {target} "
                f"{'flagged' if fig[f'{key}_target_flagged'] else 'not flagged'}; smallest norm: "
                f"class {nc['smallest_class']} ({min(nc['norms']):.1f}, the next "
                f"{sorted(nc['norms'])[1]:.1f}, median {nc['median']:.1f})")
        cn = (control or {}).get(key)
        if cn:
            fig[f'{key}_control_index'] = cn['anomaly_index']
            line += f"; clean control's index {cn['anomaly_index']:.2f}"
        # every statistic, whichever flags (defenses/nc.py STATISTICS)
        fig[f'{key}_indices'] = nc['anomaly_indices']
        every = ', '.join(f"{k} {v:.2f}" + (f" (control {cn['anomaly_indices'][k]:.2f})" if cn
                                            else '') for k, v in nc['anomaly_indices'].items())
        if cn:
            fig[f'{key}_control_indices'] = cn['anomaly_indices']
        lines.append(line + f". Every statistic: {every}.")
        for role, x in (('model', nc), ('control', cn)):
            if x:  # the per-class norms the index is read from ('*' = never reached)
                cells = [f"{v:.1f}{'' if ok else '*'}" for v, ok in zip(x['norms'], x['success'])]
                lines.append(f"{label} L1 per class ({role}): {', '.join(cells)}.")
    for name, label in (('strip', 'STRIP (code-bit entropy)'), ('sentinet', 'SentiNet')):
        r = model.get(name)
        if r:
            a = r['h_bit']['auroc'] if name == 'strip' else r['auroc']
            fig[f'{name}_auroc'] = a
            line = f"{label}: AUROC {a:.3f} triggered vs clean queries"
            if control and control.get(name):
                ca = control[name]['h_bit']['auroc'] if name == 'strip' else control[name]['auroc']
                line += f" (clean control on the same queries: {ca:.3f})"
            lines.append(line + '.')
    ref = (control or {}).get('finetune') or (control or {}).get('fineprune')
    for name, label in (('finetune', 'Fine-tuning'), ('fineprune', 'Fine-pruning')):
        r = model.get(name)
        if not r:
            continue
        b, a = r['before'], r['after']
        line = (f"{label}: t-MAP {b['t_map']:.4f} -> {a['t_map']:.4f}, MAP {b['map']:.4f} -> "
                f"{a['map']:.4f}")
        if ref:
            floor = ref['before']['t_map']
            gap = b['t_map'] - floor
            closed = (b['t_map'] - a['t_map']) / gap if gap >= MIN_GAP else float('nan')
            fig[f'{name}_gap_closed'] = closed
            fig[f'{name}_map_change'] = a['map'] - b['map']
            line += (f"; closes {closed:.0%} of the gap to the clean control's t-MAP {floor:.4f}"
                     if gap >= MIN_GAP else
                     f"; no backdoor to repair: t-MAP {gap:+.4f} against the clean control's "
                     f"{floor:.4f} (under {MIN_GAP})")
        lines.append(line + '.')
    return lines, fig
