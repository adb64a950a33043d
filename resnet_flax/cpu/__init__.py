"""The CPU runtime: everything a run does to be fast on the CPU, behind one entry (`runtime`).

  runtime.prepare(config)      before JAX starts: host allocator, CPU device split, compile cache
  Runtime.parts(config.model)  after: the conv and BatchNorm implementations to build the model with

The rest is theirs: `onednn` (oneDNN convolutions, built from onednn_conv.cc on first use),
`backend` (which convs a config runs), `devices`, `host_memory`, `compile_cache`. Importing
this package imports none of them, so train.py can set the allocator before JAX loads.
"""
