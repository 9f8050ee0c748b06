"""SentiNet for hashing (Chou et al. 2020; BB detection_infer/sentinet.py; DARKHASH.md §5).

Saliency: Grad-CAM on the last conv block for the score b(x) . tanh f(x) / K (b = sign f(x), held
fixed), i.e. the region that makes the code agree with itself; upsampled to the image, scaled to
[0, 1] by its maximum, region = CAM >= sentinet_cam_threshold (BB mask_cond 0.85).
fooled = fraction of sentinet_n defender images that, with x's region pasted in, are predicted
y(x) (nearest prototype); inert = the same with clipped N(0.5, 0.25^2) noise pasted in the region.
Score = fooled - inert (a trigger region fools whatever it is pasted on, noise does not); flagged
above the clean queries' 95% (99%) quantile: FAR at 5% (1%) FRR, and AUROC.
"""
import numpy as np
import torch
import torch.nn.functional as F

from . import common


def grad_cam(s, x):
    """CAM in [0, 1] of a batch x [B,3,H,W] -> [B,H,W] (module docstring)."""
    model = s.model
    model.eval()
    store = {}

    def keep(mod, inp, out):
        out.retain_grad()
        store['a'] = out

    hook = common.last_block(model).register_forward_hook(keep)
    xx = x.to(s.device).requires_grad_(True)  # keeps a graph when the weights are frozen
    out = model(xx)
    hook.remove()
    b = torch.sign(out.detach())
    score = (b * torch.tanh(out)).sum() / s.bits  # summed over the batch: per-image gradients
    score.backward()
    a, g = store['a'], store['a'].grad
    w = g.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((w * a).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[2:], mode='bilinear', align_corners=False)[:, 0]
    mx = cam.flatten(1).max(1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / mx).cpu()


def scores(s, c, x, gen):
    """fooled - inert for each query of x [B,3,H,W]; also returns both parts."""
    cams = grad_cam(s, x)
    y = common.predict(s.codes_of(x), s.protos)
    fooled, inert = [], []
    for i in range(len(x)):
        region = (cams[i] >= c['sentinet_cam_threshold']).float()[None]  # [1,H,W]
        j = torch.from_numpy(gen.choice(len(s.x_def), c['sentinet_n'],
                                        replace=len(s.x_def) < c['sentinet_n']))
        base = s.x_def[j]
        pasted = base * (1 - region) + x[i][None] * region
        noise = torch.from_numpy(gen.normal(0.5, 0.25, base.shape).astype(np.float32)).clamp(0, 1)
        inert_x = base * (1 - region) + noise * region
        fooled.append(float((common.predict(s.codes_of(pasted), s.protos) == y[i]).float().mean()))
        inert.append(float((common.predict(s.codes_of(inert_x), s.protos) == y[i]).float().mean()))
    return np.array(fooled) - np.array(inert), fooled, inert


def run(s, c, say):
    from tqdm import tqdm
    gen = np.random.default_rng(c['seed'] + 2)
    out = {}
    bs = 16
    for name, split, idx in (('clean', 'test', s.clean_idx), ('triggered', 'trigger', s.trig_idx)):
        x = s.images(split, idx)
        sc, fo, ine = [], [], []
        for i in tqdm(range(0, len(x), bs), desc=f"SentiNet {s.role} {name}", leave=False):
            a, b, d = scores(s, c, x[i:i + bs], gen)
            sc += a.tolist()
            fo += b
            ine += d
        out[name] = {'score': sc, 'fooled': fo, 'inert': ine}
    clean, trig = np.array(out['clean']['score']), np.array(out['triggered']['score'])
    rep = common.detection_report(clean, trig)
    rep.update(mean_clean=float(clean.mean()), mean_triggered=float(trig.mean()),
               n_clean=len(clean), n_triggered=len(trig), n_paste=c['sentinet_n'], scores=out)
    say(f"  SentiNet: AUROC {rep['auroc']:.3f}  FAR@1%FRR {rep['far_at_frr1']:.3f}  "
        f"FAR@5%FRR {rep['far_at_frr5']:.3f}  (mean fooled-inert clean {rep['mean_clean']:.3f}, "
        f"triggered {rep['mean_triggered']:.3f})")
    return rep
