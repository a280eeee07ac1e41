"""The PyTorch twins of `benchmarks/torch_twin.py`: rfgen_jax's flow estimator, generator, discriminator,
VGG19 taps and stage-2 losses and updates written again in torch (same layers, widths, norms,
activations, paddings, alignments and losses; `grid_sample(align_corners=True)` for the warp), with
random weights. Tensors are NCHW float32 (ours are NHWC); the K sources are folded into the batch where
ours vmaps. Flows are (B, 2, H, W) offsets in pixels.

The rfgen_jax imports are inside the constructors: jax must not be imported before
`torch_twin.main` has set XLA_FLAGS for `--threads=1`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as tnn
import torch.nn.functional as F

LEAK = 0.1


# =============================================================================== torch twins
def _act(x):
  return F.leaky_relu(x, LEAK)


class TEncoderBlock(tnn.Module):
  """norm, act, conv4x4/2 p1, norm, act, conv3x3 p1 (layers.EncoderBlock)."""

  def __init__(self, cin, cout):
    super().__init__()
    self.n0, self.c0 = tnn.InstanceNorm2d(cin, affine=True), tnn.Conv2d(cin, cout, 4, 2, 1)
    self.n1, self.c1 = tnn.InstanceNorm2d(cout, affine=True), tnn.Conv2d(cout, cout, 3, 1, 1)

  def forward(self, x):
    return self.c1(_act(self.n1(self.c0(_act(self.n0(x))))))


class TResBlockUp(tnn.Module):
  """layers.ResBlockUp: GFLA's ResBlockDecoder with ConvTranspose2d(3, 2, 1, output_padding=1)."""

  def __init__(self, cin, cout, hidden=None):
    super().__init__()
    hidden = hidden or cout
    self.n0, self.c = tnn.InstanceNorm2d(cin, affine=True), tnn.Conv2d(cin, hidden, 3, 1, 1)
    self.n1 = tnn.InstanceNorm2d(hidden, affine=True)
    self.up = tnn.ConvTranspose2d(hidden, cout, 3, 2, 1, output_padding=1)
    self.short = tnn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)

  def forward(self, x):
    y = self.up(_act(self.n1(self.c(_act(self.n0(x))))))
    return y + self.short(x)


class TReflectConv(tnn.Module):
  """[norm,] act, reflection pad 1, conv3x3 (layers.Jump / layers.OutputConv without tanh)."""

  def __init__(self, cin, cout, norm):
    super().__init__()
    self.norm = tnn.InstanceNorm2d(cin, affine=True) if norm else None
    self.conv = tnn.Conv2d(cin, cout, 3)

  def forward(self, x):
    if self.norm is not None:
      x = self.norm(x)
    return self.conv(F.pad(_act(x), (1, 1, 1, 1), mode="reflect"))


class TFlowEstimator(tnn.Module):
  """flow_estimator.FlowEstimator (input sizes divisible by 2^len(channels))."""

  def __init__(self, cin, channels, levels, jump_norm):
    super().__init__()
    self.levels, n = tuple(levels), len(channels)
    self.enc = tnn.ModuleList()
    prev = cin
    for c in channels:
      self.enc.append(TEncoderBlock(prev, c))
      prev = c
    self.dec, self.jump, self.heads = tnn.ModuleDict(), tnn.ModuleDict(), tnn.ModuleDict()
    finest = int(math.log2(min(levels)))
    self.factors = []
    for s in range(n - 1, finest - 1, -1):
      f, c = 2 ** s, channels[s - 1]
      self.dec[str(f)] = TResBlockUp(prev, c, c)
      self.jump[str(f)] = TReflectConv(c, c, jump_norm)
      if f in self.levels:
        self.heads[str(f)] = tnn.ModuleList([tnn.Conv2d(c, 2, 3, 1, 1), tnn.Conv2d(c, 1, 3, 1, 1),
                                             tnn.Conv2d(c, 1, 3, 1, 1)])
      self.factors.append(f)
      prev = c

  def forward(self, image, source_pose, target_pose):
    x = torch.cat([image, source_pose, target_pose], 1)
    skips = []
    for block in self.enc:
      x = block(x)
      skips.append(x)
    out = {}
    for f in self.factors:
      s = int(math.log2(f))
      x = self.dec[str(f)](x) + self.jump[str(f)](skips[s - 1])
      if f in self.levels:
        flow, occ, att = self.heads[str(f)]
        out[f] = (flow(x), torch.sigmoid(occ(x)), att(x))
    return [out[l] for l in self.levels]


class TEncoder(tnn.Module):
  def __init__(self, cin, channels):
    super().__init__()
    self.blocks = tnn.ModuleList()
    for c in channels:
      self.blocks.append(TEncoderBlock(cin, c))
      cin = c

  def forward(self, x):
    feats = []
    for b in self.blocks:
      x = b(x)
      feats.append(x)
    return feats   # feats[i] at factor 2^(i + 1)


def twarp(x, flow):
  """Bilinear warp by a pixel flow (B, 2, h, w), zero padding (rfgen_jax.ops.bilinear_warp)."""
  b, _, h, w = x.shape
  ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
  gx = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
  gy = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
  return F.grid_sample(x, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="zeros",
                       align_corners=True)


class TResidual(tnn.Module):
  def __init__(self, cin, hidden):
    super().__init__()
    self.c0, self.c1 = tnn.Conv2d(cin, hidden, 3, 1, 1), tnn.Conv2d(hidden, hidden, 3, 1, 1)
    self.out = tnn.Conv2d(hidden, 2, 3, 1, 1)

  def forward(self, x):
    return self.out(_act(self.c1(_act(self.c0(x)))))


class TGenerator(tnn.Module):
  """generator.Generator: the K sources are folded into the batch where ours vmaps."""

  def __init__(self, config):
    super().__init__()
    from rfgen_jax.models import model_channels  # pylint: disable=g-import-not-at-top  (after XLA_FLAGS)
    m, p = config.model, config.data.pose_channels
    ch = model_channels(config)
    self.levels = tuple(m.levels)
    self.attention_sigmoid = m.attention_activation == "sigmoid"
    self.flow = TFlowEstimator(3 + 2 * p, ch["flow_encoder"], self.levels, m.jump_norm)
    self.source = TEncoder(3, ch["source"])
    self.target = TEncoder(p, ch["target"])
    self.residual = tnn.ModuleList([
        TResidual(2 * ch["source"][int(math.log2(l)) - 1], hid)
        for l, hid in zip(self.levels, ch["residual_hidden"])])
    self.ups = tnn.ModuleList()
    prev = ch["target"][-1]
    for c in ch["decoder"]:
      self.ups.append(TResBlockUp(prev, c))
      prev = c
    self.out = TReflectConv(prev, 3, m.output_norm)

  def forward(self, src, src_pose, tgt_pose):
    b, k = src.shape[:2]
    merge = lambda t: t.reshape((b * k,) + t.shape[2:])
    tp = tgt_pose[:, None].expand(-1, k, -1, -1, -1)
    est = self.flow(merge(src), merge(src_pose), merge(tp))
    feats = self.source(merge(src))
    x = self.target(tgt_pose)[-1]
    factor, step, out_flows = max(self.levels), 0, []
    while factor > 1:
      if factor in self.levels:
        i = self.levels.index(factor)
        flow, occ, att = est[i]
        f = feats[int(math.log2(factor)) - 1]
        xt = x[:, None].expand(-1, k, -1, -1, -1).reshape(f.shape)
        warped = twarp(f, flow)
        refined = flow + self.residual[i](torch.cat([xt, warped], 1))
        g = twarp(f, refined) * (1 - occ) + xt * occ
        a = torch.sigmoid(att) if self.attention_sigmoid else att
        wts = torch.softmax(a.reshape(b, k, 1, *a.shape[2:]), dim=1)
        x = (wts * g.reshape(b, k, *g.shape[1:])).sum(1)
        out_flows.append(flow)
      x = self.ups[step](x)
      factor, step = factor // 2, step + 1
    return torch.tanh(self.out(x)), out_flows


class TDiscriminator(tnn.Module):
  """discriminator.ResDiscriminator with torch's spectral_norm."""

  def __init__(self, channels, num_down, max_channels):
    super().__init__()
    sn = tnn.utils.parametrizations.spectral_norm
    self.blocks = tnn.ModuleList()
    prev, cin = channels, 3
    for i in range(num_down):
      out = min(channels * 2 ** i, max_channels)
      self.blocks.append(tnn.ModuleList([sn(tnn.Conv2d(cin, prev, 3, 1, 1)),
                                         sn(tnn.Conv2d(prev, out, 4, 2, 1)),
                                         sn(tnn.Conv2d(cin, out, 1))]))
      prev, cin = out, out
    self.logits = sn(tnn.Conv2d(prev, 1, 1))

  def forward(self, x):
    for c0, c1, short in self.blocks:
      x = c1(_act(c0(_act(x)))) + short(F.avg_pool2d(x, 2))
    return self.logits(_act(x))


class TVGG19(tnn.Module):
  """torchvision's vgg19().features up to the deepest tap; returns the requested relu taps."""

  CFG = [(1, 64), (1, 64), "M", (2, 128), (2, 128), "M", (3, 256)] + [(3, 256)] * 3 + ["M"] + \
      [(4, 512)] * 4 + ["M"] + [(5, 512)] * 4

  def __init__(self, taps, input_norm):
    super().__init__()
    from rfgen_jax.nets import vgg19  # pylint: disable=g-import-not-at-top  (after XLA_FLAGS)
    self.taps, self.input_norm = set(taps), input_norm
    deepest = max(vgg19.TAP_NAMES.index(t) for t in taps)
    self.layers, self.names, cin, n = tnn.ModuleList(), [], 3, 0
    for item in self.CFG:
      if n > deepest:
        break
      if item == "M":
        self.layers.append(tnn.MaxPool2d(2, 2))
        self.names.append(None)
        continue
      self.layers.append(tnn.Conv2d(cin, item[1], 3, 1, 1))
      self.names.append(vgg19.TAP_NAMES[n])
      cin, n = item[1], n + 1
    for p in self.parameters():
      p.requires_grad_(False)
    self.mean = torch.tensor(vgg19.IMAGENET_MEAN).view(1, 3, 1, 1)
    self.std = torch.tensor(vgg19.IMAGENET_STD).view(1, 3, 1, 1)

  def forward(self, x):
    if self.input_norm == "imagenet":
      x = ((x + 1) / 2 - self.mean) / self.std
    out = {}
    for layer, name in zip(self.layers, self.names):
      x = layer(x)
      if name is not None:
        x = F.relu(x)
        if name in self.taps:
          out[name] = x
    return out


def t_correctness(src, tgt, flow, eps=1e-8):
  """losses.flow.sampling_correctness (max over source positions a constant)."""
  b, c, h, w = src.shape
  s = src.reshape(b, c, -1)
  t = tgt.reshape(b, c, -1)
  with torch.no_grad():
    sn = s / (s.norm(dim=1, keepdim=True) + eps)
    tn = t / (t.norm(dim=1, keepdim=True) + eps)
    cmax = torch.bmm(sn.transpose(1, 2), tn).max(dim=1).values
  warped = twarp(src, flow).reshape(b, c, -1)
  cos = (warped / (warped.norm(dim=1, keepdim=True) + eps) * tn).sum(1)
  return torch.exp(-cos / (cmax + eps)).mean() - math.exp(-1)


def t_affine(flow, k):
  """losses.flow.affine_regularization."""
  from rfgen_jax.losses.flow import affine_residual_operator  # pylint: disable=g-import-not-at-top  (after XLA_FLAGS)
  m = torch.tensor(affine_residual_operator(k), dtype=flow.dtype).reshape(k * k, 1, k, k)
  b, _, h, w = flow.shape
  r = F.conv2d(flow.reshape(b * 2, 1, h, w), m)
  return r.square().sum(1).reshape(b, 2, -1).sum(1).mean()


def t_gram(f):
  b, c, h, w = f.shape
  f = f.reshape(b, c, h * w)
  return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


class TorchStage2:
  """One stage-2 step of the torch twins, the same losses and updates as steps.full_step."""

  def __init__(self, config):
    from rfgen_jax.models.layers import scale_channels  # pylint: disable=g-import-not-at-top  (after XLA_FLAGS)
    from rfgen_jax.train.steps import vgg_taps  # pylint: disable=g-import-not-at-top  (after XLA_FLAGS)
    m, c, t = config.model, config.losses, config.train
    self.config = config
    self.gen = TGenerator(config)
    self.disc = TDiscriminator(scale_channels(m.disc_channels, m.width), int(m.disc_downsampling),
                               scale_channels(m.disc_max_channels, m.width))
    self.vgg = TVGG19(vgg_taps(config), c.vgg_input)
    self.opt_g = torch.optim.Adam(self.gen.parameters(), t.learning_rate, (t.adam_b1, t.adam_b2))
    self.opt_d = torch.optim.Adam(self.disc.parameters(), t.disc_learning_rate, (t.adam_b1, t.adam_b2))

  def __call__(self, batch):
    c = self.config.losses
    src, sp, tgt, tp = batch
    b, k = src.shape[:2]
    with torch.no_grad():
      tf = self.vgg(tgt)
      sf = self.vgg(src.reshape((b * k,) + src.shape[2:]))
    self.opt_g.zero_grad(set_to_none=True)
    for p in self.disc.parameters():
      p.requires_grad_(False)
    fake, flows = self.gen(src, sp, tp)
    ff = self.vgg(fake)
    loss = c.l1 * (fake - tgt).abs().mean()
    loss = loss + c.perceptual * sum((ff[l] - tf[l]).abs().mean() for l in c.perceptual_layers)
    loss = loss + c.style * sum((t_gram(ff[l]) - t_gram(tf[l])).abs().mean() for l in c.style_layers)
    cor = reg = 0.0
    for flow, tap, kz, wc, wr in zip(flows, c.correctness_layers, c.affine_kernel_sizes,
                                     c.correctness_level_weights, c.regularization_level_weights):
      if wc:
        tt = tf[tap][:, None].expand(-1, k, -1, -1, -1).reshape(sf[tap].shape)
        cor = cor + wc * t_correctness(sf[tap], tt, flow)
      if kz and wr:
        reg = reg + wr * t_affine(flow, int(kz))
    loss = loss + c.correctness * cor + c.regularization * reg
    loss = loss + c.adversarial * F.softplus(-self.disc(fake)).mean()
    loss.backward()
    self.opt_g.step()
    for p in self.disc.parameters():
      p.requires_grad_(True)
    self.opt_d.zero_grad(set_to_none=True)
    fake = fake.detach()
    d_loss = 0.5 * (F.softplus(-self.disc(tgt)).mean() + F.softplus(self.disc(fake)).mean())
    d_loss.backward()
    self.opt_d.step()
    return float(loss.detach())
