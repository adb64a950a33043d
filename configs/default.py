"""Defaults for every field; other configs import this and override a few.

As it stands: He et al. (2016) ResNet-20 on CIFAR-10, 164 epochs (64k iterations of 128),
lr 0.1 divided by 10 at epochs 82 and 123 (32k, 48k iterations), SGD momentum 0.9,
weight decay 1e-4, pad-4 crop + flip.

  python train.py --config configs/default.py --workdir runs/resnet20_cifar10
  (or: make train)

Target: about 91.7% test accuracy (He et al. report 8.75% error, akamaster 8.27%).
Status: not yet run with this code. On a CPU this run takes hours (benchmarks/results.md has
the current img/s); use a GPU.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # model init, data order and augmentation all derive from it

  config.model = ml_collections.ConfigDict()
  config.model.name = 'resnet20'  # a registered name: `python -m resnet_flax.models --list`
  config.model.dtype = 'float32'  # compute dtype ('bfloat16' for mixed precision)
  config.model.bn_momentum = 0.9  # flax convention: 0.9 here == PyTorch's momentum=0.1
  config.model.bn_epsilon = 1e-5  # PyTorch's default
  config.model.bn_running_var = 'unbiased'  # what BN's running variance averages: 'unbiased', the
  #   batch variance * n / (n - 1), as torch.nn.BatchNorm2d does; 'biased', as flax and Keras do
  #   (training is unaffected: batches are normalised with the biased variance either way)
  config.model.dropout_rate = 0.0  # between the convs of pre-activation basic blocks (WRN)
  config.model.zero_init_last_bn = False  # zero the last BN scale of each residual branch
  config.model.scan_blocks = 'auto'  # nn.scan over each stage's repeated blocks: compile time flat
  #   in depth, steps somewhat slower on CPU; variables stacked per stage. 'on', 'off', or 'auto':
  #   scanned beyond training/layout.SCAN_ABOVE_BLOCKS blocks (benchmarks/NOTES.md, "Depth")
  config.model.remat_blocks = 'auto'  # recompute in the backward pass for less memory: 'convs'
  #   (keep the convs' outputs, recompute BN and ReLU), 'on' (keep only each block's input, run
  #   it again), 'off' (keep everything), or 'auto': 'convs' beyond SCAN_ABOVE_BLOCKS, else 'off'
  config.model.conv_backend = 'auto'  # convolution kernels: 'onednn' (oneDNN's, CPU on one device:
  #   float32, or bfloat16 where the CPU has AMX/AVX512-BF16), 'xla', or 'auto': oneDNN where it
  #   applies, as it was measured faster there (resnet_flax/cpu/backend.py); same function
  config.model.recompute_bn = 'auto'  # BatchNorm recomputes `x - mean` in its backward pass instead
  #   of storing it ('on', 'off', or 'auto': on for CPU backends, where it was measured faster;
  #   same variables and function, models/batch_norm.py)
  config.model.init_from = ''  # a PyTorch .pth/.th state dict to start from (fine-tuning); '' = random
  config.model.init_reinit_head = False  # with init_from: fresh head (e.g. another class count)

  config.data = ml_collections.ConfigDict()
  config.data.dataset = 'cifar10'  # a tfds image classification name (cifar10, cifar100, mnist,
  #   fashion_mnist, svhn_cropped, ...), 'cifar10_files'/'cifar100_files' (the CIFAR python pickles
  #   in data.cifar_dir), 'digits' (offline, sklearn) or 'synthetic'
  config.data.data_dir = ''  # TFDS data dir; '' means $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.data.download = True  # download and prepare a missing tfds dataset (fails fast offline)
  config.data.train_split = 'train'  # tfds split to train on ('train[:90%]', 'train+extra' work)
  config.data.test_split = 'test'  # tfds split evaluated as the test set
  config.data.cifar_dir = ''  # *_files: the CIFAR python tarball's extracted folder, or its parent
  config.data.cifar100_labels = 'fine'  # CIFAR-100: 'fine' (100 classes) or 'coarse' (20 classes)
  config.data.validation_size = 0  # training images held out as a fixed stratified validation split
  #   (5000: He et al.'s 45k/5k); its seed is fixed, not config.seed; 0 = none
  config.data.image_size = 0  # resize (bilinear) to this height == width; 0 keeps the native size
  config.data.grayscale_to_rgb = False  # tile 1-channel images to 3 channels (e.g. for RGB weights)
  config.data.mean = ()  # per-channel mean in [0, 1] units, e.g. ImageNet's (0.485, 0.456, 0.406);
  #   () = the dataset's (published constants for CIFAR, else computed from the training images)
  config.data.std = ()  # per-channel std likewise, e.g. (0.229, 0.224, 0.225); () = the dataset's
  config.data.normalization = 'per_channel'  # 'per_channel': (x - mean) / std per channel;
  #   'per_pixel_mean': subtract the training images' mean image (He et al.), then / per-channel std
  config.data.on_device = 'auto'  # 'on': the uint8 training set lives on every device and each
  #   batch is shuffled and augmented inside the compiled step (no per-step host copy); 'off':
  #   the tf.data pipeline; 'auto': on when it takes at most a quarter of the free device memory
  #   (host RAM for CPU devices). The two draw different (equally distributed) orders.
  config.data.synthetic = ml_collections.ConfigDict()  # only for dataset='synthetic'
  config.data.synthetic.num_train = 1024  # training images
  config.data.synthetic.num_test = 256  # test images
  config.data.synthetic.image_size = 32  # height == width
  config.data.synthetic.channels = 3
  config.data.synthetic.num_classes = 10
  config.data.synthetic.noise = 0.3  # std of the per-pixel noise around each class prototype, in [0, 1] units
  config.data.synthetic.seed = 0  # the synthetic dataset itself (not the training order)

  config.augment = ml_collections.ConfigDict()  # training images only
  config.augment.crop_padding = 4  # pad by this many pixels, then crop back at random; 0 disables
  config.augment.crop_mode = 'zero'  # the crop's padding: 'zero' or 'reflect' (mirrored, as in WRN)
  config.augment.flip = True  # random horizontal flip
  config.augment.cutout = 0  # side in pixels of a square zeroed after normalisation (the mean
  #   colour), centred anywhere and clipped at the border (DeVries & Taylor: 16); 0 = off
  config.augment.cutout_per_batch = False  # one cutout square position per batch (the SAM code)
  config.augment.mixup_alpha = 0.0  # mixup: lam * x + (1 - lam) * (a permuted batch's x), lam ~
  #   Beta(alpha, alpha) per batch; batches gain soft 'target's; 0 = off
  config.augment.cutmix_alpha = 0.0  # cutmix: paste a box of area ~(1 - lam) from a permuted batch,
  #   lam ~ Beta(alpha, alpha) per batch, then lam = the area kept; 0 = off
  config.augment.mix_switch_prob = 0.5  # with both alphas > 0: the share of batches using cutmix
  config.augment.policy = 'none'  # after crop and flip, on uint8 pixels, as torchvision's classes:
  #   'autoaugment_cifar10' (Cubuk et al.'s CIFAR-10 policy), 'randaugment' (Cubuk et al. 2020,
  #   n ops at magnitude m) or 'trivialaugment' (Mueller & Hutter, TrivialAugmentWide); 'none'
  config.augment.randaugment_n = 2  # 'randaugment': ops applied per image (torchvision's num_ops)
  config.augment.randaugment_m = 9  # 'randaugment': magnitude bin, 0..30 (torchvision's magnitude)

  config.batch_size = 128  # global batch, split evenly over all devices
  config.eval_batch_size = 500  # the last batch is padded and masked: every test image counts once
  config.num_epochs = 164  # training length; an epoch is len(train) // batch_size steps ...
  config.num_steps = 0  # ... or this many steps when > 0 (He et al.: 64000) ...
  config.num_examples = 0  # ... or this many training examples (rounded up to whole steps)

  config.optim = ml_collections.ConfigDict()
  config.optim.optimizer = 'sgd'  # 'sgd' (with momentum), 'adam', 'adamw' or 'lars'
  config.optim.learning_rate = 0.1  # peak learning rate (before lr_scaling)
  config.optim.lr_scaling = 'none'  # 'linear': the lr is learning_rate * batch_size / lr_base_batch
  config.optim.lr_base_batch = 256  # 'linear': the batch size learning_rate was tuned for
  config.optim.momentum = 0.9  # 0 for plain SGD ('sgd' and 'lars')
  config.optim.nesterov = False
  config.optim.adam_b1 = 0.9  # Adam only
  config.optim.adam_b2 = 0.999  # Adam only
  config.optim.adam_eps = 1e-8  # Adam only (PyTorch's default)
  config.optim.adam_eps_placement = 'corrected'  # Adam only: eps is added to sqrt of the
  #   bias-corrected second moment ('corrected': PyTorch, optax) or of the raw one ('raw': Keras,
  #   whose adam_eps default is 1e-7); training/adam_eps.py
  config.optim.lars_trust_coefficient = 0.001  # LARS only: the layer-wise lr is this x |w| / |g|
  config.optim.weight_decay = 1e-4  # how it is applied: weight_decay_mode
  config.optim.weight_decay_mode = 'coupled'  # 'coupled': L2 added to the gradient, as
  #   torch.optim.SGD/Adam do ('sgd', 'adam', 'lars'); 'decoupled': p -= lr * (update + wd * p)
  #   after the optimizer, as SGDW/AdamW do ('sgd', 'adam', 'adamw')
  config.optim.decay_bn_and_bias = True  # False: decay conv/dense kernels only
  config.optim.label_smoothing = 0.0  # training targets (1 - e) * one_hot + e / classes; eval is unsmoothed
  config.optim.clip_grad_norm = 0.0  # clip the gradients' global norm to this first (0: off)
  config.optim.sam_rho = 0.0  # SAM (Foret et al.; optax.contrib.sam): the gradient is taken at
  #   params + sam_rho * g / |g| (two forward/backward passes per step; 0: off, 0.05 is typical)
  config.optim.ema_decay = 0.0  # exponential moving average of params and BN statistics, used
  #   for evaluation and prediction (0: off; e.g. 0.999); the raw weights keep training
  config.optim.schedule = 'step'  # 'constant', 'step', 'exponential', 'cosine', 'onecycle', 'he2016'
  config.optim.milestones = (82, 123)  # 'step': epochs (or steps) where the lr is multiplied ...
  config.optim.decay_factor = 0.1  # ... by this factor ('step' and 'exponential')
  config.optim.milestones_unit = 'epochs'  # 'step': unit of milestones, 'epochs' or 'steps'
  config.optim.decay_every_epochs = 1.0  # 'exponential': multiply by decay_factor this often
  config.optim.decay_begin_epochs = 0.0  # 'exponential': the first period starts after this many
  #   epochs (1.0: PyTorch's StepLR stepped as scheduler.step(epoch) at each epoch's end)
  config.optim.warmup_epochs = 0.0  # linear warm-up from 0 first (not 'onecycle' nor 'he2016')
  config.optim.onecycle_pct_start = 0.25  # 'onecycle': fraction of the steps rising to the lr ...
  config.optim.onecycle_div_factor = 25.0  # ... from lr / onecycle_div_factor; then cosine down ...
  config.optim.onecycle_final_div_factor = 1e4  # ... to lr / onecycle_div_factor / this at the end
  config.optim.he_milestones_steps = (32000, 48000)  # 'he2016': steps where the lr is divided by 10
  config.optim.he_warmup_steps = 0  # 'he2016': lr / 10 for this many steps first (0: off; 400: ResNet-110)

  config.parallel = ml_collections.ConfigDict()  # how the step runs on several devices and hosts
  config.parallel.mode = 'jit'  # 'jit' over a 1-D ('data',) mesh, or 'pmap'; the same step either way
  config.parallel.batch_norm = 'global'  # BN statistics over the global batch, or 'per_device'
  #   ("ghost" BN over each device's share, as the SAM code does); running statistics are averaged
  #   over the devices at every step, so eval and checkpoints see one set
  config.parallel.distributed = False  # call jax.distributed.initialize (multi-host); the three
  #   fields below, where unset, are detected from the cluster (SLURM, Open MPI, TPU) or from
  #   $JAX_COORDINATOR_ADDRESS
  config.parallel.coordinator_address = ''  # 'host:port' of process 0; setting it implies distributed
  config.parallel.num_processes = 0  # 0: detect
  config.parallel.process_id = -1  # -1: detect
  config.parallel.cpu_devices = 0  # split a CPU host into this many XLA devices sharing the batch;
  #   0: auto, 4 (else 2) when both batch sizes divide, global BN, one process and XLA's convs
  #   (oneDNN's use every core from one device); no effect on GPU/TPU (resnet_flax/cpu/devices.py)
  config.parallel.preemption_check_every_steps = 10  # multi-process runs agree on a SIGTERM/SIGINT
  #   stop every this many steps (a host-wide sync each time); one process needs no sync
  config.parallel.transfer_guard = 'disallow'  # jax.transfer_guard around the step: implicit
  #   host<->device copies are errors ('allow', 'log', 'disallow')

  config.cpu_host_memory_tuning = True  # on the CPU backend, train.py / resnet-flax-train set
  #   glibc's malloc to reuse freed step buffers and, on one device, run one step at a time (faster
  #   steps, one step's buffers in memory; resnet_flax/cpu/host_memory.py); False leaves the
  #   allocator and JAX's dispatch alone. train_and_evaluate called as a library never changes it
  config.compilation_cache_dir = '~/.cache/resnet_flax/jax'  # JAX's persistent compilation cache
  #   (compiles of 1 s or more, 4 GiB LRU): reruns and resumes start faster, same results; '': off

  config.log_every_steps = 100  # training metrics are averaged over this many steps (and epoch ends)
  config.eval_every_epochs = 1  # test-set evaluation interval (always after the last step) ...
  config.eval_every_steps = 0  # ... and every this many steps too (0: off)
  config.checkpoint_every_epochs = 1  # checkpoint interval (always after the last epoch) ...
  config.checkpoint_every_steps = 0  # ... and every this many steps too (0: off)
  config.checkpoint_keep = 3  # newest checkpoints kept ...
  config.checkpoint_keep_best = 1  # ... plus this many best by checkpoint_best_metric (0: off)
  config.checkpoint_best_metric = 'test_accuracy'  # higher is better
  config.progress_bar = True  # a per-epoch bar on interactive terminals
  config.tensorboard = True  # event files in workdir/tensorboard (`tensorboard --logdir runs/`)
  # Weights & Biases logging beside metrics.jsonl and TensorBoard (pip install -e ".[wandb]"):
  # the same curves, the config, and the final metrics in the run's summary; process 0 only.
  config.wandb = ml_collections.ConfigDict()
  config.wandb.project = ''  # a W&B project name turns it on ('': off; wandb is not imported)
  config.wandb.entity = ''  # the W&B user or team ('': your default entity)
  config.wandb.name = ''  # the run's display name ('': the workdir's name)
  config.wandb.mode = ''  # 'online', 'offline' (sync later) or 'disabled' ('': $WANDB_MODE or online)
  config.write_plots = True  # PNG curves (loss, accuracy, lr) in workdir/plots/ at the end
  config.profile_steps = 0  # trace this many steps (from the 2nd) to workdir/profile (0: off)
  return config
