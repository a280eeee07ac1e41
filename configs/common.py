"""Defaults shared by every data set config, and the argument-string parser.

Every key the code reads exists here, so `config.json` of a run shows the whole experiment, and a
mistyped `--config.KEY=VALUE` override fails (the configs are locked by `config_flags`).
Defaults reproduce the paper (Lu et al., AAAI 2022) and, where it is silent, GFLA's published values.
"""
from __future__ import annotations

import ml_collections


def parse_arg(arg: str | None, **defaults):
  """Parses `key=value,flag` argument strings such as `runlocal` or `runlocal,width=0.5`.

  Unnamed items set a boolean `True`. Values are converted to the type of the default.
  Unknown keys raise a ValueError naming the key and the accepted ones.
  """
  result = ml_collections.ConfigDict(defaults)
  if not arg:
    return result
  for item in arg.split(","):
    item = item.strip()
    if not item:
      continue
    key, sep, value = item.partition("=")
    if key not in defaults:
      raise ValueError(
          f"Unknown config argument {key!r} in {arg!r}; accepted: {sorted(defaults)}.")
    if not sep:
      result[key] = True
    else:
      kind = type(defaults[key])
      result[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
  return result


def shrink(c: ml_collections.ConfigDict, *, width: float, total_steps: int, warmup_steps: int,
           log_every: int, max_tuples: int, eval_batch_size: int | None = None) -> None:
  """The `runlocal` / `tiny` variants: a few steps of a narrow model that logs, samples and saves often."""
  c.model.width = width
  c.train.batch_size = 2
  c.train.flow_warmup_steps = warmup_steps
  c.train.total_steps = total_steps
  c.train.log_every_steps = log_every
  c.train.sample_every_steps = total_steps // 2
  c.checkpoint.every_steps = total_steps // 2
  c.data.num_workers = 0
  c.eval.max_tuples = max_tuples
  if eval_batch_size:
    c.eval.batch_size = eval_batch_size


def runlocal(c: ml_collections.ConfigDict) -> None:
  """`configs/<name>.py:runlocal`: 20 steps at width 0.25 (10 of flow warm-up), 16 eval tuples."""
  shrink(c, width=0.25, total_steps=20, warmup_steps=10, log_every=5, max_tuples=16)


def tiny(c: ml_collections.ConfigDict) -> None:
  """`:tiny` (tests): 4 steps at width 0.125 (2 of flow warm-up), 4 eval tuples in batches of 2."""
  shrink(c, width=0.125, total_steps=4, warmup_steps=2, log_every=1, max_tuples=4, eval_batch_size=2)


def novel_view_settings(c: ml_collections.ConfigDict, local: bool) -> None:
  """The paper's Tables 2 and 3 setting (ShapeNet chairs, KITTI, VoxCeleb2): 256x256, batch 5, trained
  with K = 2 and evaluated with K = 2 and 4; GFLA's 256-high discriminator and affine windows.
  `local` (the configs' `runlocal` argument) shrinks it to 64x64."""
  c.data.image_size = (256, 256)
  c.data.num_sources = 2
  c.model.disc_downsampling = 4
  c.losses.affine_kernel_sizes = (3, 5, 0)   # GFLA's 256-high setting (DeepFashion)
  c.train.batch_size = 5
  c.eval.num_sources = (2, 4)
  c.eval.mask_lpips = False                  # a body-keypoint metric
  if local:
    c.data.image_size = (64, 64)
    c.model.disc_downsampling = 2
    runlocal(c)


def _path_or_none():
  """An unset file path that `--config.KEY=PATH` can set (a plain None field cannot be overridden)."""
  return ml_collections.config_dict.placeholder(str)


def get_base_config() -> ml_collections.ConfigDict:
  """The full key set with paper defaults (Market-1501 sizes). Data set configs override parts."""
  c = ml_collections.ConfigDict()

  # ---------------------------------------------------------------- data
  c.data = ml_collections.ConfigDict()
  c.data.name = "market"            # the registered data set (rfgen_jax/data/datasets/): synthetic | market |
                                    # deepfashion | folder | shapenet_chair | shapenet_car | kitti | turntable |
                                    # voxceleb2; it fixes the pose kind (keypoints | camera | landmarks)
  c.data.root = ""                  # the data set's folder (its layout: the data set's module, docs/data.md)
  c.data.tfds_data_dir = ""         # where TFDS writes prepared array_record files; "" = $TFDS_DATA_DIR or
                                    # ~/tensorflow_datasets (never inside data.root; datasets/people_tfds.py)
  c.data.image_size = (128, 64)     # (H, W)
  c.data.num_sources = 2            # K used for training
  c.data.num_keypoints = 18         # OpenPose/COCO order
  c.data.pose_channels = 18         # channels of a pose map (P)
  c.data.heatmap_sigma = 6.0        # Gaussian pose-map sigma in pixels (GFLA: 6 at every size)
  c.data.heatmap_sigma_scaling = "fixed"  # fixed: heatmap_sigma px at every size (GFLA) | height: px at a
                                          # 128-high image, scaled with the height (docs/protocol.md)
  c.data.keypoint_frame = ()        # (H, W) the keypoint CSV is in; () = each image file's own size
                                    # (DeepFashion as GFLA releases it: (256, 176) with 1101x750 files)
  c.data.augment = True             # GFLA's random affine, the same for an image and its keypoints /
                                    # landmarks; never applied to camera data (it would contradict the pose)
  c.data.augment_rotation = 5.0     # degrees, +-
  c.data.augment_shift = 5.0        # pixels at a 128-high image, +-
  c.data.augment_scale = (0.95, 1.05)
  c.data.augment_target = "weaker"  # weaker: the target's affine has GFLA's angle x0.2, shift x0.5, no
                                    # scale | same: the sources' transform
  c.data.num_workers = 2            # grain worker processes (0 = in the main process)
  c.data.read_threads = 1           # threads per process (or grain worker) loading elements: on this
                                    # 2-core CPU 2 threads cost 55% more host CPU per batch (GIL
                                    # contention) for no gain (docs/performance.md, "Train loop")
  c.data.prefetch_buffer_size = 2   # batches read ahead (per process, and per grain worker)
  c.data.shuffle_seed = 0
  c.data.skip_corrupt_images = False  # True: skip and count unreadable images instead of failing
  c.data.test_tuples_seed = 1234      # the fixed, seeded list of evaluation tuples
  c.data.num_test_tuples = 0          # 0 = one tuple per test image as target
  # Camera poses (the M2N data sets: rfgen_jax/data/datasets/m2n.py, rfgen_jax/data/poses/camera.py).
  c.data.camera_encoding = "one_hot_view"  # one_hot_view (ShapeNet, turntable) | vector (KITTI)
  c.data.num_azimuths = 36            # one_hot_view: azimuth bins (M2N: 10 degrees each)
  c.data.num_elevations = 3           # one_hot_view: elevation bins (M2N: 0, 10, 20 degrees)
  c.data.elevation_step = 10.0        # one_hot_view: degrees between elevation bins
  c.data.elevation_min = 0.0          # one_hot_view: elevation of bin 0, degrees
  c.data.pose_dim = 6                 # vector: length of the stored pose (KITTI 6-DoF)
  c.data.pose_normalisation = "none"  # vector: none | standardize | scale
  c.data.pose_mean = None             # vector/standardize: per-component mean; None = from the train split
  c.data.pose_std = None              # vector/standardize: per-component std; None = from the train split
  c.data.pose_scale = None            # vector/scale: one divisor per component
  c.data.source_window = 0            # sources within +-window views (KITTI frames: 10); 0 = any view
  c.data.source_pool = "split"        # split: sources from the target's split | file: the whole HDF5 (M2N)
  # Facial landmarks (data set voxceleb2: rfgen_jax/data/datasets/voxceleb.py).
  c.data.num_landmarks = 68           # iBUG 300-W order
  # Your own images (data.name "folder": rfgen_jax/data/datasets/image_folder.py, docs/own_dataset.md).
  c.data.folder_annotation = "annotations-{split}.csv"  # keypoint CSV per split, relative to data.root
  c.data.folder_identity = "prefix"   # prefix (file name up to the separator) | folder (first subfolder) |
                                      # column (the CSV's 4th column 'identity')
  c.data.folder_identity_separator = "_"
  # The synthetic people (data.name "synthetic", rfgen_jax/data/synthetic/people.py), generated at data.root.
  c.data.synthetic_train_ids = 200
  c.data.synthetic_test_ids = 20
  c.data.synthetic_views_per_id = 8
  c.data.synthetic_seed = 0
  # Per-camera misalignment of the synthetic people (rfgen_jax/data/synthetic/misalign.py; all 0 = off):
  # camera distance (scale, fraction), height/sideways offset (px at 128 high), roll (degrees), colour
  # and brightness gains (fractions). configs/ablation.py turns it on.
  c.data.synthetic_misalign = ml_collections.ConfigDict(
      {"scale": 0.0, "shift_y": 0.0, "shift_x": 0.0, "roll": 0.0, "colour": 0.0, "brightness": 0.0})
  # The synthetic turntable (data.name "turntable"), generated at data.root when absent.
  c.data.turntable_train_objects = 24
  c.data.turntable_test_objects = 6
  c.data.turntable_seed = 0

  # ---------------------------------------------------------------- model
  c.model = ml_collections.ConfigDict()
  c.model.width = 1.0               # multiplies every channel count
  c.model.levels = (8, 4, 2)        # fusion levels as downsampling factors, coarse to fine
  c.model.residual_flow = True      # ablation switches (paper Table 4); all off = "baseline"
  c.model.occlusion = True
  c.model.attention = True
  c.model.dtype = "float32"         # compute dtype: float32 | bfloat16 (params stay float32)
  c.model.warp_padding = "zeros"    # zeros | border
  c.model.warp_impl = "gather"      # gather (CPU/GPU) | onehot (small maps on TPU) | reference; docs/performance.md
  c.model.conv_impl = "auto"        # auto: exact fast conv forms chosen per platform | xla: plain XLA convs
  c.model.init = "orthogonal"       # orthogonal (GFLA: gain 0.02, every conv) | lecun (flax's default)
  c.model.attention_activation = "sigmoid"  # sigmoid (paper: a^k in (0, 1), then softmax over K) | none
  c.model.jump_norm = False         # instance norm in the flow estimator's skip convs (GFLA: none)
  c.model.output_norm = False       # instance norm before the output conv (GFLA: none)
  c.model.flow_encoder_channels = (32, 64, 128, 256, 256)   # stride-2 blocks down to H/32
  c.model.source_encoder_channels = (64, 128, 256)          # at H/2, H/4, H/8
  c.model.target_channels = (256, 128, 64)                  # decoder widths at H/8, H/4, H/2
  c.model.residual_hidden = 0       # hidden channels of R_i; 0 = the level's feature channels
  c.model.disc_channels = 32        # ndf of the residual patch discriminator
  c.model.disc_downsampling = 3     # 3 for 128-high images, 4 for 256-high
  c.model.disc_max_channels = 128   # channel cap of the discriminator (GFLA img_f; ndf 32 -> 32-64-128)

  # ---------------------------------------------------------------- losses
  c.losses = ml_collections.ConfigDict()
  c.losses.vgg19_weights = _path_or_none()  # path to the converted VGG19 file (see README)
  c.losses.allow_random_vgg = False # True: random-weight VGG19 if no file is given (warns; tests/demo)
  c.losses.vgg_input = "gfla"       # gfla: [-1, 1] images straight in (GFLA; its weights below assume it)
                                    # | imagenet: mapped to [0, 1] and ImageNet-normalised (torchvision)
  c.losses.gan = "nonsaturating"    # nonsaturating | lsgan | hinge
  # Stage 1 (flow warm-up) weights.
  c.losses.warmup_correctness = 20.0
  c.losses.warmup_regularization = 0.01
  # Stage 2 (end to end) weights.
  c.losses.l1 = 5.0
  c.losses.perceptual = 0.5
  c.losses.style = 500.0
  c.losses.correctness = 5.0
  c.losses.regularization = 0.0025
  c.losses.adversarial = 2.0
  # Affine regularisation window per fusion level (aligned with model.levels; 0 = not applied).
  c.losses.affine_kernel_sizes = (0, 3, 0)
  # Sampling correctness per fusion level (aligned with model.levels): VGG19 tap used at that level.
  c.losses.correctness_layers = ("relu4_1", "relu3_1", "relu2_1")
  # How L_cor samples the source features at target + flow: "gaussian" (GFLA's Resample2d: 4 x 4 taps
  # weighted by a Gaussian of sigma 2 px, border clamp) | "bilinear" (zero padding; GFLA's
  # use_bilinear_sampling path). rfgen_jax/ops/gaussian_resample.py says why it matters.
  c.losses.correctness_sampling = "gaussian"
  c.losses.correctness_sampling_kernel = 4
  c.losses.correctness_sampling_sigma = 2.0
  # Keypoint-correspondence flow loss (rfgen_jax/losses/keypoint_flow.py): NOT in the paper, off here;
  # the flow at each target joint (and points along the limbs) must point to the same place in the
  # source. For runs without ImageNet VGG19 weights, whose sampling correctness carries no alignment
  # signal (configs/synthetic.py turns it on; docs/architecture.md, "Training the flows").
  c.losses.warmup_keypoint_flow = 0.0   # stage 1 weight
  c.losses.keypoint_flow = 0.0          # stage 2 weight
  c.losses.keypoint_flow_limb_fractions = (0.25, 0.5, 0.75)
  c.losses.keypoint_flow_form = "points"  # points: the flow at the correspondences | dense: at every level
                                          # position near the person, against the thin-plate spline through them
  # Per-level weights (aligned with model.levels) multiplying L_cor and L_reg of each level before the
  # sum, in both stages. GFLA has one flow level on Market-1501 (H/4, weight 1) and two on DeepFashion
  # (H/8, H/4: total 2); our three levels split GFLA's total equally (docs/protocol.md).
  c.losses.correctness_level_weights = (1 / 3, 1 / 3, 1 / 3)
  c.losses.regularization_level_weights = (1.0, 1.0, 1.0)   # where affine_kernel_sizes > 0 (GFLA: 1)
  c.losses.perceptual_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  c.losses.style_layers = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")

  # ---------------------------------------------------------------- train
  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 8            # global batch
  c.train.flow_warmup_steps = 20_000
  c.train.total_steps = 220_000     # warm-up included
  c.train.seed = 0
  c.train.learning_rate = 1e-4
  c.train.disc_learning_rate = 1e-5
  c.train.adam_b1 = 0.9
  c.train.adam_b2 = 0.999
  c.train.grad_clip_norm = 0.0      # 0 = off
  c.train.log_every_steps = 100
  c.train.sample_every_steps = 2000
  c.train.profile_steps = 0         # >0: capture a profile window of this many steps after warm-up
  c.train.mesh_shape = (-1, 1)      # (data, model) axes; -1 = all devices; model > 1 is refused
                                    # (parameters are replicated; docs/scaling.md says why)
  c.train.grad_reduction = "fixed_order"   # or "all_reduce": how gradients are averaged over devices;
                                    # fixed_order gives the same bits on any process layout
                                    # (rfgen_jax/runtime/reduction.py, docs/scaling.md)
  c.train.ema_decay = 0.999         # EMA of the generator's parameters (ramped: min(d, (1+t)/(10+t)));
                                    # 0 = EMA equals the raw params; docs/scaling.md, "EMA of the generator"
  c.train.eval_at_end = True
  c.train.init_from = ""            # "" = from scratch; else start from existing weights (parameters only:
                                    # fresh optimizer states, step 0): a released model's name or folder
                                    # (python -m rfgen_jax.tools.pretrained --list), a run's workdir (its
                                    # latest checkpoint) or RUN/checkpoints/STEP. Ignored once the workdir
                                    # holds a checkpoint (the run resumes); docs/training.md, "Fine-tuning"

  # ---------------------------------------------------------------- checkpoint
  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 5000
  c.checkpoint.max_to_keep = 3
  c.checkpoint.async_save = True

  # ---------------------------------------------------------------- eval
  c.eval = ml_collections.ConfigDict()
  c.eval.num_sources = (1, 2, 3)
  c.eval.step = -1                  # -1 = latest checkpoint
  c.eval.batch_size = 8
  c.eval.max_tuples = 0             # 0 = all test tuples
  # Evaluators run by --mode=eval, by name (rfgen_jax/evaluation/evaluators.py); docs/protocol.md.
  c.eval.evaluators = ("fid_gfla", "fid_pytorch", "lpips", "mask_lpips", "ssim_psnr_l1", "samples", "pngs")
  c.eval.source_use = True          # eval/metrics.json: source_use_K{k} (rfgen_jax/evaluation/source_use.py)
  c.eval.every_steps = 0            # > 0: the trainer also runs eval.train_evaluators every N steps
  c.eval.train_evaluators = ("fid_gfla", "lpips", "mask_lpips", "ssim_psnr_l1")
  c.eval.fid_real = "train"         # FID's real statistics: train (the whole training split, GFLA) | test
                                    # (the evaluated test targets)
  c.eval.test_pairs = "auto"        # auto: data.root's market-/fasion-pairs-test.csv when present (Table 1's
                                    # pairs); "": the seeded tuples; or a pairs CSV (evaluation/test_pairs.py)
  c.eval.gfla_inception_weights = _path_or_none()  # converted torchvision inception_v3_google-*.pth (GFLA's FID, `fid`)
  c.eval.inception_weights = _path_or_none()  # converted pytorch-fid pt_inception-2015-12-05 file (`fid_pytorch`)
  c.eval.alexnet_weights = _path_or_none()    # converted torchvision AlexNet file (LPIPS backbone)
  c.eval.lpips_heads = _path_or_none()        # converted LPIPS v0.1 linear heads
  c.eval.mask_lpips = True          # Market-1501 metric: LPIPS inside the target's limb mask
  c.eval.num_sample_grids = 2       # batches drawn into samples_K{k}.png
  c.eval.use_ema = True             # eval with the generator's EMA parameters (False: the raw ones)
  c.eval.inner_maps = False         # True: sample grids (eval and TensorBoard) also show each source's flow,
                                    # occlusion and attention per level (visualize.sample_grid_with_maps)

  return c
