"""Engines: how events are moved and summed. The per-person kernels are the same in every engine.

The numpy engine (``LocalEngine``) is the reference: one partition holding every person. The Spark engine runs
the same :func:`build_partition` on partitions of persons and sums the :class:`Aggregates`.
"""
