"""What every stage stands on and no stage owns: sealed provenance handles (``_provenance``), atomic private
files (``_atomic``), the array buffer cache and its C memory handler (``_buffers``, ``_memory.c``), and the LLVM
intrinsics the compiled kernels share (``_intrinsics``). Nothing here imports a stage."""
